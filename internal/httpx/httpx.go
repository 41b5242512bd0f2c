package httpx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// StatusClientClosedRequest is the status a request is logged and counted with when its
// client hung up before the answer (nginx's 499): not a failure of the server.
const StatusClientClosedRequest = 499

// RetryAfterSeconds is the Retry-After of a 503: a store outage, or a read model that cannot
// catch up for now.
const RetryAfterSeconds = "2"

// MaxBodyBytes is the largest request body accepted (413 beyond).
const MaxBodyBytes = 1 << 20

// ProblemTypeBase prefixes every problem "type"; the fragment is the error code, documented in
// the OpenAPI document.
const ProblemTypeBase = "https://orderledger.dev/problems/"

// Error is a request-level failure with its status and a stable code.
type Error struct {
	Status int
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 invalid_input naming the offending field or parameter.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "invalid_input", format, args...)
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
}

// statusOfKind is the one table from domain error classes to HTTP statuses.
var statusOfKind = map[domain.Kind]int{
	domain.KindInvalid:  http.StatusBadRequest,
	domain.KindNotFound: http.StatusNotFound,
	domain.KindConflict: http.StatusConflict,
}

// Classify returns the status and code for err: request errors and domain errors by their
// class, an unreachable store 503, a request that ran out of time 504, anything else 500.
func Classify(err error) (status int, code string) {
	var he *Error
	if errors.As(err, &he) {
		return he.Status, he.Code
	}
	if kind, c, ok := domain.KindOf(err); ok {
		return statusOfKind[kind], c
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	case Unavailable(err):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// Unavailable reports whether err says a store cannot be reached (an event store's
// ErrUnavailable, or a database connection refused, cut or shutting down), rather than that
// something is wrong with the request or the server.
func Unavailable(err error) bool {
	if errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P: the server is shutting down or starting.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// A statement that never reached the server: its connection was closed.
	return pgconn.SafeToRetry(err)
}

// WriteError answers err as problem+json. A 5xx detail never leaks internals: it is logged with
// the request and the client gets a generic sentence.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client hung up: no one reads an answer, and it is no fault of the server.
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
	status, code := Classify(err)
	detail := err.Error()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	if status >= 500 && status != http.StatusGatewayTimeout && status != http.StatusServiceUnavailable {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		detail = "internal error; the server log has the details"
	}
	WriteProblem(w, r, status, code, detail)
}

// WriteProblem answers a problem document. The detail and the instance are clipped (Clip), so
// that an answer never echoes a huge path or value back.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	body, _ := json.Marshal(Problem{
		Type: ProblemTypeBase + code, Title: http.StatusText(status), Status: status,
		Detail: clipTo(detail, MaxDetail), Code: code, Instance: Clip(r.URL.Path),
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// MaxEcho is how many characters of a client's input (a path, a parameter, a value) an answer
// repeats; MaxDetail bounds a whole problem detail.
const (
	MaxEcho   = 200
	MaxDetail = 1000
)

// Clip returns s cut to MaxEcho characters, with "…" where it was cut.
func Clip(s string) string { return clipTo(s, MaxEcho) }

func clipTo(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return strings.ToValidUTF8(s[:i], "") + "…"
		}
		n++
	}
	return s
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding the answer failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Query parses a raw query string strictly: only the allowed parameters, each at most once;
// anything else is a 400 naming the parameter. Parameter names are case-sensitive.
func Query(raw string, allowed ...string) (map[string]string, error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, BadRequest("malformed query string: %s", Clip(err.Error()))
	}
	q := make(map[string]string, len(values))
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return nil, BadRequest("unknown query parameter %q; this route takes none", Clip(name))
			}
			return nil, BadRequest("unknown query parameter %q; this route takes %s", Clip(name), strings.Join(allowed, ", "))
		}
		if len(values[name]) > 1 {
			return nil, BadRequest("parameter %s is given %d times; give it once", name, len(values[name]))
		}
		q[name] = values[name][0]
	}
	return q, nil
}

// ReadBody reads the whole request body, at most MaxBodyBytes (413 beyond).
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is over the %d byte limit", MaxBodyBytes)
		}
		return nil, BadRequest("reading the request body: %v", err)
	}
	return body, nil
}

// DecodeStrict parses body into dst: exactly one JSON object of UTF-8 text, no unknown field
// (names are case-sensitive), no member twice, no control character in a string but tab, line
// feed and carriage return, each value of its field's type. The error names the field, with
// its array indices ("lines[2].sku"), or the byte offset at fault.
func DecodeStrict(body []byte, dst any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return BadRequest("request body is empty; send a JSON object")
	}
	if err := checkStrict(body, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(body, err)
	}
	if dec.More() {
		return BadRequest("request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("request body has data after the JSON object")
	}
	return nil
}

func describeDecodeError(body []byte, err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return BadRequest("malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typeErr):
		// A mismatch of the whole body has no field; pathAt would name the body's first
		// element instead.
		field := typeErr.Field
		if p := pathAt(body, typeErr.Offset); p != "" && field != "" {
			field = p
		}
		if field == "" {
			return BadRequest("request body must be a JSON object, not %s", typeErr.Value)
		}
		return BadRequest("field %s must be %s, got %s", field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("malformed JSON: the body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return BadRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return BadRequest("malformed JSON: %v", err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer (64-bit)"
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return kind
}

// pathAt names the JSON value that ends at byte offset of body, with array indices
// ("lines[2].unit_price"), which encoding/json's errors leave out.
func pathAt(body []byte, offset int64) string {
	type frame struct {
		array bool
		index int
		key   string
	}
	var stack []frame
	dec := json.NewDecoder(strings.NewReader(string(body)))
	path := func() string {
		var b strings.Builder
		for i, f := range stack {
			switch {
			case f.array:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			case f.key != "":
				if i > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if len(stack) > 0 && !stack[len(stack)-1].array && expectKey {
			if key, ok := tok.(string); ok {
				stack[len(stack)-1].key = key
				expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{})
			expectKey = true
			continue
		case json.Delim('['):
			stack = append(stack, frame{array: true, index: -1})
			if dec.More() {
				stack[len(stack)-1].index = 0
			}
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value (scalar or just-closed container) ended here.
		if dec.InputOffset() >= offset {
			return path()
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.array {
				top.index++
			} else {
				expectKey = true
			}
		}
	}
}
