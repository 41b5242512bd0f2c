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
		`[1,2]`:                          "request body must be a JSON object, not array",
	}
	for body, want := range cases {
		var o order
		err := DecodeStrict([]byte(body), &o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want it to contain %q", body, err, want)
		}
	}
}
