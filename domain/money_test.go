package domain_test

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/domain"
)

func TestAddAmounts(t *testing.T) {
	cases := []struct {
		a, b int64
		want int64
		err  error
	}{
		{a: 1, b: 2, want: 3},
		{a: 5, b: 0, want: 5},
		{a: 5, b: -5, want: 0},
		{a: -5, b: 0, want: -5},
		{a: math.MaxInt64, b: 0, want: math.MaxInt64},
		{a: math.MinInt64, b: 0, want: math.MinInt64},
		{a: math.MaxInt64 - 1, b: 1, want: math.MaxInt64},
		{a: math.MaxInt64, b: 1, err: domain.ErrAmountOverflow},
		{a: 1, b: math.MaxInt64, err: domain.ErrAmountOverflow},
		{a: math.MinInt64, b: -1, err: domain.ErrAmountOverflow},
		{a: math.MinInt64 + 1, b: -1, want: math.MinInt64},
		{a: math.MaxInt64, b: math.MinInt64, want: -1},
	}
	for _, c := range cases {
		got, err := domain.AddAmounts(c.a, c.b)
		if !errors.Is(err, c.err) || (c.err == nil && got != c.want) {
			t.Errorf("AddAmounts(%d, %d) = %d, %v; want %d, %v", c.a, c.b, got, err, c.want, c.err)
		}
	}
}

func TestMulAmount(t *testing.T) {
	cases := []struct {
		quantity, price int64
		want            int64
		err             error
	}{
		{quantity: 3, price: 250, want: 750},
		{quantity: 0, price: 250, want: 0},
		{quantity: 0, price: 0, want: 0},
		{quantity: math.MaxInt64, price: 1, want: math.MaxInt64},
		{quantity: math.MaxInt64, price: 0, want: 0},
		{quantity: math.MaxInt64/2 + 1, price: 2, err: domain.ErrAmountOverflow},
		// 2^32 × 2^32 = 2^64: wraps to exactly 0 in 64 bits, the case a naive check misses.
		{quantity: 1 << 32, price: 1 << 32, err: domain.ErrAmountOverflow},
		{quantity: 3037000500, price: 3037000500, err: domain.ErrAmountOverflow},
		{quantity: -1, price: 5, err: domain.ErrInvalidInput},
		{quantity: 5, price: -1, err: domain.ErrInvalidInput},
	}
	for _, c := range cases {
		got, err := domain.MulAmount(c.quantity, c.price)
		if !errors.Is(err, c.err) || (c.err == nil && got != c.want) {
			t.Errorf("MulAmount(%d, %d) = %d, %v; want %d, %v", c.quantity, c.price, got, err, c.want, c.err)
		}
	}
}

func TestTaxRoundsHalfUp(t *testing.T) {
	cases := []struct {
		net, bps int64
		want     int64
	}{
		{net: 1005, bps: 1000, want: 101}, // 100.5 → 101
		{net: 1004, bps: 1000, want: 100}, // 100.4 → 100
		{net: 1006, bps: 1000, want: 101}, // 100.6 → 101
		{net: 1, bps: 5000, want: 1},      // 0.5 → 1
		{net: 1, bps: 4999, want: 0},      // 0.4999 → 0
		{net: 0, bps: 10000, want: 0},
		{net: 12345, bps: 0, want: 0},
		{net: 12345, bps: 10000, want: 12345},
		{net: math.MaxInt64, bps: 10000, want: math.MaxInt64},
		{net: math.MaxInt64, bps: 1, want: 922337203685478},        // …477.5807 → …478
		{net: math.MaxInt64, bps: 5000, want: 4611686018427387904}, // …903.5 → …904
		{net: math.MaxInt64, bps: 9999, want: 9222449699651090329},
		{net: math.MaxInt64 - 1, bps: 10000, want: math.MaxInt64 - 1}, // no carry into a wrong value
		{net: 9223372036854775, bps: 10000, want: 9223372036854775},   // the product exceeds 64 bits
		{net: 4611686018427387904, bps: 3, want: 1383505805528216},    // 1383505805528216.3712 → …216
		{net: 4611686018427387904, bps: 7, want: 3228180212899172},    // …171.5328 → …172
		{net: 1_000_000_000_000_000_000, bps: 2500, want: 250_000_000_000_000_000},
	}
	for _, c := range cases {
		got, err := domain.Tax(c.net, c.bps)
		if err != nil || got != c.want {
			t.Errorf("Tax(%d, %d) = %d, %v; want %d", c.net, c.bps, got, err, c.want)
		}
	}
}

func TestTaxRefusesOutOfRange(t *testing.T) {
	for _, c := range []struct{ net, bps int64 }{{-1, 100}, {100, -1}, {100, 10001}} {
		if _, err := domain.Tax(c.net, c.bps); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("Tax(%d, %d) error = %v, want ErrInvalidInput", c.net, c.bps, err)
		}
	}
}

// TestTaxMatchesExactArithmetic checks the 128-bit rounding against big integers over the
// whole range of amounts: floor((net × bps + 5000) / 10000).
func TestTaxMatchesExactArithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		net := rapid.Int64Range(0, math.MaxInt64).Draw(t, "net")
		bps := rapid.Int64Range(0, domain.MaxTaxRateBps).Draw(t, "bps")
		got, err := domain.Tax(net, bps)
		if err != nil {
			t.Fatalf("Tax(%d, %d): %v", net, bps, err)
		}
		want := new(big.Int).Mul(big.NewInt(net), big.NewInt(bps))
		want.Add(want, big.NewInt(5000))
		want.Quo(want, big.NewInt(10000))
		if !want.IsInt64() || want.Int64() != got {
			t.Fatalf("Tax(%d, %d) = %d, want %s", net, bps, got, want)
		}
	})
}

func TestValidCurrency(t *testing.T) {
	for c, want := range map[string]bool{
		"EUR": true, "USD": true, "JPY": true, "BHD": true, "GBP": true, "CHF": true,
		"XYZ": false, "DEM": false, "FRF": false, "XAU": false, "XXX": false,
		"eur": false, "EU": false, "EURO": false, "E1R": false, "": false,
	} {
		if got := domain.ValidCurrency(c); got != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestCurrencyDigits(t *testing.T) {
	for c, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "BHD": 3, "KWD": 3, "DEM": 2, "XYZ": 0, "": 0} {
		if got := domain.CurrencyDigits(c); got != want {
			t.Errorf("CurrencyDigits(%q) = %d, want %d", c, got, want)
		}
	}
}

func TestMajorUnits(t *testing.T) {
	cases := []struct{ minor, currency, want string }{
		{"1250", "EUR", "12.50"},
		{"5", "EUR", "0.05"},
		{"50", "EUR", "0.50"},
		{"100", "EUR", "1.00"},
		{"0", "EUR", "0.00"},
		{"-5", "EUR", "-0.05"},
		{"-1250", "EUR", "-12.50"},
		{"1500", "JPY", "1500"},
		{"-1500", "JPY", "-1500"},
		{"1", "BHD", "0.001"},
		{"12345", "BHD", "12.345"},
		{"92233720368547758070", "EUR", "922337203685477580.70"},
		{"777", "XYZ", "777"},
	}
	for _, c := range cases {
		if got := domain.MajorUnits(c.minor, c.currency); got != c.want {
			t.Errorf("MajorUnits(%s, %s) = %s, want %s", c.minor, c.currency, got, c.want)
		}
	}
	if got := domain.FormatAmount(1250, "EUR"); got != "12.50 EUR" {
		t.Errorf("FormatAmount(1250, EUR) = %q, want 12.50 EUR", got)
	}
	if got := domain.FormatAmount(math.MinInt64, "JPY"); got != "-9223372036854775808 JPY" {
		t.Errorf("FormatAmount(MinInt64, JPY) = %q", got)
	}
}

func TestValidID(t *testing.T) {
	cases := map[string]bool{
		"order-42": true, "A.b_c-9": true, "9": true, "a": true, "a.": true, "a..b": true,
		"": false, "a b": false, "a/b": false, "ü": false,
		".": false, "..": false, "-x": false, "_x": false, ".x": false,
		"x123456789012345678901234567890123456789012345678901234567890123":  true,
		"x1234567890123456789012345678901234567890123456789012345678901234": false,
	}
	for id, want := range cases {
		if got := domain.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestValidReference(t *testing.T) {
	cases := map[string]bool{
		"order-42": true, "-x": true, "_x": true, ".x": true, "..": true,
		"": false, "a b": false, "a/b": false,
		"_123456789012345678901234567890123456789012345678901234567890123":  true,
		"_1234567890123456789012345678901234567890123456789012345678901234": false,
	}
	for id, want := range cases {
		if got := domain.ValidReference(id); got != want {
			t.Errorf("ValidReference(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	cases := map[*domain.Error]domain.Kind{
		domain.ErrInvalidInput:      domain.KindInvalid,
		domain.ErrAmountOverflow:    domain.KindInvalid,
		domain.ErrAmountTooLarge:    domain.KindInvalid,
		domain.ErrOrderNotFound:     domain.KindNotFound,
		domain.ErrOverpayment:       domain.KindConflict,
		domain.ErrAlreadyReceived:   domain.KindConflict,
		domain.ErrInsufficientStock: domain.KindConflict,
	}
	for sentinel, want := range cases {
		wrapped := errors.Join(errors.New("context"), sentinel)
		kind, code, ok := domain.KindOf(wrapped)
		if !ok || kind != want || code != sentinel.Code() {
			t.Errorf("KindOf(%v) = %v, %q, %v; want %v, %q", sentinel, kind, code, ok, want, sentinel.Code())
		}
	}
	if _, _, ok := domain.KindOf(errors.New("not ours")); ok {
		t.Error("KindOf classified an error that is not a domain error")
	}
}

// An identifier quoted in an error is cut at 80 characters: one of exactly 80 is quoted whole,
// one of 81 is cut with a mark.
func TestRefusedIDsAreQuotedUpTo80Characters(t *testing.T) {
	for _, n := range []int{80, 81} {
		id := "-" + strings.Repeat("x", n-1) // a leading '-' is refused
		_, err := domain.DecideRegisterCustomer(domain.Customer{}, domain.RegisterCustomer{CustomerID: id, Name: "Ada", Email: "ada@example.com", At: now})
		if err == nil {
			t.Fatalf("id of %d characters starting with '-' accepted", n)
		}
		whole, cut := strings.Contains(err.Error(), id), strings.Contains(err.Error(), "…")
		if n == 80 && (!whole || cut) || n == 81 && (whole || !cut) {
			t.Errorf("%d characters: %v", n, err)
		}
	}
}
