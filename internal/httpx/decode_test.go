package httpx

import (
	"strings"
	"testing"
)

func TestTypeErrorsNameTheIndexedField(t *testing.T) {
	type line struct {
		SKU       string `json:"sku"`
		UnitPrice int64  `json:"unit_price"`
	}
	type order struct {
		Currency string `json:"currency"`
		Lines    []line `json:"lines"`
	}
	cases := map[string]string{
		`{"currency":"EUR","lines":[{"sku":"a","unit_price":1},{"sku":"b","unit_price":1.5}]}`: "field lines[1].unit_price must be an integer",
		`{"lines":[{"unit_price":"x"}]}`: "field lines[0].unit_price must be an integer",
		`{"currency":5}`:                 "field currency must be a string",
		`{"lines":{}}`:                   "field lines must be an array",
		`[1,2]`:                          "request body must be a JSON object, not an array",
		`{"lines":{"sku":"x"}}`:          "field lines must be an array, got an object",
		`{"lines":[[1]]}`:                "field lines[0] must be an object, got an array",
		`{"lines":[{"sku":"a"},{"sku":"b"},{"sku":7}]}`:  "field lines[2].sku must be a string, got number 7",
		`{"lines":[{"unit_price":9223372036854775808}]}`: "field lines[0].unit_price must be an integer (64-bit), got number 9223372036854775808",
		`{"lines":[{"unit_price":1e3}]}`:                 "field lines[0].unit_price must be an integer (64-bit), got number 1e3",
	}
	for body, want := range cases {
		var o order
		err := DecodeStrict([]byte(body), &o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want it to contain %q", body, err, want)
		}
	}
}

func TestStrictDecodingRefusesWhatEncodingJSONLetsThrough(t *testing.T) {
	type line struct {
		SKU *string `json:"sku"`
	}
	type order struct {
		Name  *string `json:"name"`
		Lines []line  `json:"lines"`
	}
	cases := map[string]string{
		`{"NAME":"Ann"}`:                       `unknown field "NAME" (field names are case-sensitive)`,
		`{"lines":[{"SKU":"a"}]}`:              `unknown field "lines[0].SKU"`,
		`{"name":"Ann","name":"Bob"}`:          "field name is given more than once",
		`{"lines":[{},{"sku":"a","sku":"b"}]}`: "field lines[1].sku is given more than once",
		`{"name":"A\u0000nn"}`:                 "field name must not contain control characters (found U+0000)",
		`{"lines":[{"sku":"a\u001bb"}]}`:       "field lines[0].sku must not contain control characters (found U+001B)",
		`{"name":"A\u0085"}`:                   "found U+0085",
		"{\"name\":\"A\xffnn\"}":               "field name is not valid UTF-8 (byte 10)",
		"{\"lines\":[{\"sku\":\"\xc3\"}]}":     "field lines[0].sku is not valid UTF-8",
		"{\"name\x00\":\"A\"}":                 "malformed JSON",
	}
	for body, want := range cases {
		var o order
		err := DecodeStrict([]byte(body), &o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want it to contain %q", body, err, want)
		}
	}
	// What stays accepted: exact names, multi-line text, any Unicode letter.
	for _, body := range []string{
		`{"name":"Ann\nSmith\r\n\tx","lines":[{"sku":"a"}]}`,
		`{"name":"Zoë 名前 🙂"}`,
		`{"name":null,"lines":null}`,
	} {
		var o order
		if err := DecodeStrict([]byte(body), &o); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
