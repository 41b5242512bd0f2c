package privacy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"

	"github.com/orderledger/orderledger/domain"
)

// The fast path. Sealing and opening change only the values of a few top-level string fields;
// parsing the whole event into a map and encoding it again costs more than the cryptography
// (and reorders its keys). Where each field reads plainly — `"name":"value"` once, with no
// escape in the value — its value is replaced in place. A quote inside a JSON string is always
// escaped, so `"name":"` cannot match inside a value; and the events that carry personal data
// have no nested object with a key of the same name. Anything else takes the map path.

// flatString finds the value of the string field name in data: its bounds (without quotes),
// found=false when data has no such key, ok=false when the field is not in the plain form.
func flatString(data []byte, name string) (start, end int, found, ok bool) {
	key := make([]byte, 0, len(name)+4)
	key = append(append(append(key, '"'), name...), '"', ':')
	at := bytes.Index(data, key)
	if at < 0 {
		return 0, 0, false, true
	}
	if bytes.Index(data[at+len(key):], key) >= 0 {
		return 0, 0, true, false
	}
	start = at + len(key)
	if start >= len(data) || data[start] != '"' {
		return 0, 0, true, false
	}
	start++
	n := bytes.IndexByte(data[start:], '"')
	if n < 0 || bytes.IndexByte(data[start:start+n], '\\') >= 0 {
		return 0, 0, true, false
	}
	return start, start + n, true, true
}

// splice is a replacement of data[from:to].
type splice struct {
	from, to int
	with     []byte
}

func apply(data []byte, splices []splice) []byte {
	slices.SortFunc(splices, func(a, b splice) int { return a.from - b.from })
	out := make([]byte, 0, len(data)+64*len(splices))
	at := 0
	for _, sp := range splices {
		out = append(append(out, data[at:sp.from]...), sp.with...)
		at = sp.to
	}
	return append(out, data[at:]...)
}

// sealFlat is sealData's fast path; ok=false when data is not in the plain form.
func (s *Store) sealFlat(ctx context.Context, eventType string, data []byte) ([]byte, bool, error) {
	from, to, found, ok := flatString(data, "customer_id")
	if !found || !ok || from == to {
		return nil, false, nil
	}
	subject := string(data[from:to])
	var splices []splice
	for _, field := range domain.PersonalFields(eventType) {
		start, end, found, ok := flatString(data, field)
		if !ok {
			return nil, false, nil
		}
		if !found || start == end {
			continue
		}
		key, err := s.keys.dataKey(ctx, subject, true)
		if err != nil {
			return nil, true, err
		}
		sealed := seal(key, data[start:end], fieldAAD(subject, field))
		with := make([]byte, 0, len(sealedPrefix)+base64.StdEncoding.EncodedLen(len(sealed)))
		with = base64.StdEncoding.AppendEncode(append(with, sealedPrefix...), sealed)
		splices = append(splices, splice{start, end, with})
	}
	if len(splices) == 0 {
		return data, true, nil
	}
	return apply(data, splices), true, nil
}

// openFlat is openData's fast path; ok=false when data is not in the plain form.
func (s *Store) openFlat(ctx context.Context, eventType string, data []byte) ([]byte, map[string]FieldState, bool, error) {
	from, to, found, ok := flatString(data, "customer_id")
	if !found || !ok {
		return nil, nil, false, nil
	}
	subject := string(data[from:to])
	states := map[string]FieldState{}
	var splices []splice
	for _, field := range domain.PersonalFields(eventType) {
		start, end, found, ok := flatString(data, field)
		if !ok {
			return nil, nil, false, nil
		}
		if !found || start == end {
			continue
		}
		encoded, sealed := bytes.CutPrefix(data[start:end], []byte(sealedPrefix))
		if !sealed {
			states[field] = Plaintext
			continue
		}
		key, err := s.keys.dataKey(ctx, subject, false)
		if errors.Is(err, domain.ErrCustomerErased) || errors.Is(err, errNoKey) {
			states[field] = Shredded
			splices = append(splices, splice{start - 1, end + 1, []byte("null")})
			continue
		}
		if err != nil {
			return nil, nil, true, err
		}
		ciphertext, err := base64.StdEncoding.AppendDecode(nil, encoded)
		if err != nil {
			return nil, nil, true, errors.New(eventType + "." + field + ": sealed value is not base64")
		}
		plain, err := open(key, ciphertext, fieldAAD(subject, field))
		if err != nil {
			return nil, nil, true, errors.New(eventType + "." + field + " of customer " + subject + " does not open with the customer's data key")
		}
		quoted, _ := json.Marshal(string(plain))
		states[field] = Sealed
		splices = append(splices, splice{start - 1, end + 1, quoted})
	}
	if len(splices) == 0 {
		return data, states, true, nil
	}
	return apply(data, splices), states, true, nil
}
