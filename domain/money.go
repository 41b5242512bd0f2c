package domain

import (
	"fmt"
	"math"
	"math/bits"
	"regexp"
)

// Amounts are int64 counts of minor units (cents). Every sum and product in the domain goes
// through these helpers, so an overflow is an error and never wraps around.

// AddAmounts returns a+b or ErrAmountOverflow.
func AddAmounts(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, fmt.Errorf("%w: %d + %d", ErrAmountOverflow, a, b)
	}
	return s, nil
}

// MulAmount returns quantity × unitPrice for non-negative inputs, or ErrAmountOverflow.
func MulAmount(quantity, unitPrice int64) (int64, error) {
	if quantity < 0 || unitPrice < 0 {
		return 0, fmt.Errorf("%w: negative factor %d × %d", ErrInvalidInput, quantity, unitPrice)
	}
	hi, lo := bits.Mul64(uint64(quantity), uint64(unitPrice))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %d × %d", ErrAmountOverflow, quantity, unitPrice)
	}
	return int64(lo), nil
}

// MaxTaxRateBps is 100 % in basis points.
const MaxTaxRateBps = 10000

// Tax returns round_half_up(net × rateBps / 10000) for net ≥ 0 and 0 ≤ rateBps ≤ 10000, computed
// in 128 bits so that no net amount that fits in int64 overflows; the tax never exceeds net.
func Tax(net int64, rateBps int64) (int64, error) {
	if net < 0 || rateBps < 0 || rateBps > MaxTaxRateBps {
		return 0, fmt.Errorf("%w: tax of %d at %d bps", ErrInvalidInput, net, rateBps)
	}
	hi, lo := bits.Mul64(uint64(net), uint64(rateBps))
	// Add half the divisor before dividing: round half up for non-negative values.
	lo, carry := bits.Add64(lo, MaxTaxRateBps/2, 0)
	hi += carry
	// hi < 10000 here, so the division cannot overflow, and the quotient is at most net (the
	// rate is at most 100 % and the half added is under one unit), so it fits in int64.
	q, _ := bits.Div64(hi, lo, MaxTaxRateBps)
	return int64(q), nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// ValidCurrency reports whether c is three capital letters (an ISO 4217 code's shape).
func ValidCurrency(c string) bool { return currencyPattern.MatchString(c) }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidID reports whether id is a client-supplied identifier the API accepts.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func checkID(field, id string) error {
	if !ValidID(id) {
		return invalid(field, "must match ^[A-Za-z0-9._-]{1,64}$, got %q", truncate(id, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
