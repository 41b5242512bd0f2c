package httpx

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkStrict reads body as the JSON value dst points to and refuses what encoding/json lets
// through: a field name that matches only when case is ignored ({"NAME": …} for name), a
// member given twice in one object (encoding/json keeps the last), text that is not UTF-8
// (encoding/json replaces it by U+FFFD), and control characters in a string. It also names a
// value of the wrong type by its exact place ("lines[2].sku"), which encoding/json cannot.
// A syntax error is left to the decoder, which says where it is.
func checkStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		at := invalidUTF8At(body)
		if field := pathAt(body, int64(at)); field != "" {
			return BadRequest("field %s is not valid UTF-8 (byte %d)", Clip(field), at)
		}
		return BadRequest("request body is not valid UTF-8 (byte %d)", at)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	s := &strictScanner{dec: dec}
	err := s.value(reflect.TypeOf(dst), "")
	if err == errSyntax {
		return nil
	}
	return err
}

// errSyntax stops the scan at malformed JSON; the decoder describes it.
var errSyntax = fmt.Errorf("syntax")

type strictScanner struct{ dec *json.Decoder }

// value reads one JSON value that is to fill a Go value of type t (nil when anything goes)
// at path.
func (s *strictScanner) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // it decodes itself
	}
	tok, err := s.dec.Token()
	if err != nil {
		return errSyntax
	}
	if tok == nil {
		return nil // null leaves the field as it is: absent
	}
	if err := checkType(t, tok, path); err != nil {
		return err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			return s.object(t, path)
		case '[':
			return s.array(t, path)
		}
	case string:
		if r, ok := controlCharacter(tok); ok {
			return BadRequest("%s must not contain control characters (found U+%04X)", describePlace(path), r)
		}
	}
	return nil
}

func (s *strictScanner) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return errSyntax
		}
		key, _ := tok.(string)
		child := key
		if path != "" {
			child = path + "." + key
		}
		if r, ok := controlCharacter(key); ok {
			return BadRequest("field name %q must not contain control characters (found U+%04X)", Clip(child), r)
		}
		if seen[key] {
			return BadRequest("field %s is given more than once", Clip(child))
		}
		seen[key] = true
		ft := elem
		if fields != nil {
			var known bool
			if ft, known = fields[key]; !known {
				return BadRequest("unknown field %q (field names are case-sensitive)", Clip(child))
			}
		}
		if err := s.value(ft, child); err != nil {
			return err
		}
	}
	if _, err := s.dec.Token(); err != nil {
		return errSyntax
	}
	return nil
}

func (s *strictScanner) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; s.dec.More(); i++ {
		if err := s.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	if _, err := s.dec.Token(); err != nil {
		return errSyntax
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkType refuses a JSON value that cannot fill a Go value of type t.
func checkType(t reflect.Type, tok json.Token, path string) error {
	if t == nil {
		return nil
	}
	got := tokenKind(tok)
	var want string
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		want = "an object"
		if tok == json.Delim('{') {
			return nil
		}
	case reflect.Slice, reflect.Array:
		want = "an array"
		if tok == json.Delim('[') {
			return nil
		}
	case reflect.String:
		want = "a string"
		if _, ok := tok.(string); ok {
			return nil
		}
	case reflect.Bool:
		want = "a boolean"
		if _, ok := tok.(bool); ok {
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "an integer (64-bit)"
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err == nil {
				return nil
			}
			got = "number " + Clip(string(n))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "a non-negative integer"
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err == nil {
				return nil
			}
			got = "number " + Clip(string(n))
		}
	case reflect.Float32, reflect.Float64:
		want = "a number"
		if _, ok := tok.(json.Number); ok {
			return nil
		}
	default:
		return nil
	}
	if path == "" {
		return BadRequest("request body must be a JSON object, not %s", got)
	}
	return BadRequest("field %s must be %s, got %s", Clip(path), want, got)
}

func tokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "number " + Clip(string(tok))
	}
	return "null"
}

// jsonFields maps the JSON names of t's fields, exactly as tagged, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// controlCharacter returns the first control character of s (Unicode category Cc) other than
// tab, line feed and carriage return, which multi-line text such as an address may hold.
func controlCharacter(s string) (rune, bool) {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return r, true
		}
	}
	return 0, false
}

// invalidUTF8At is the offset of body's first byte that is not valid UTF-8.
func invalidUTF8At(body []byte) int {
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(body)
}

func describePlace(path string) string {
	if path == "" {
		return "the request body"
	}
	return "field " + Clip(path)
}
