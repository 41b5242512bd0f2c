package domain

import (
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"unicode/utf8"
)

// Amounts are int64 counts of minor units (cents). Every sum and product in the domain goes
// through these helpers, so an overflow is an error and never wraps around.

// AddAmounts returns a+b or ErrAmountOverflow.
func AddAmounts(a, b int64) (int64, error) {
	s := a + b
	// Adding a positive b must make the sum larger, and adding zero or a negative b must not;
	// anything else wrapped around.
	if (s > a) != (b > 0) {
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

// Amount caps: a unit price, a payment or a refund is at most MaxAmount minor units, an
// order's total at most MaxOrderTotal. Below them every sum the read models keep has room to
// spare, and a figure that large is far more likely a mistake than a sale.
const (
	MaxAmount     = 1_000_000_000_000  // 10^12
	MaxOrderTotal = 10_000_000_000_000 // 10^13
)

// checkAmountCap refuses an amount above limit with ErrAmountTooLarge naming the field.
func checkAmountCap(field string, amount, limit int64) error {
	if amount > limit {
		return fmt.Errorf("%w: %s is %d, at most %d minor units", ErrAmountTooLarge, field, amount, limit)
	}
	return nil
}

// IDPattern is what an identifier a client chooses for something new must match: a letter
// or digit first, so that ".", ".." and "-x" (which paths and command lines cannot address)
// are never created.
const IDPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var (
	idPattern = regexp.MustCompile(IDPattern)
	// referencePattern is what an identifier that addresses something existing must match:
	// the rule before the first character was restricted, so what an older version created
	// stays addressable.
	referencePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// ValidID reports whether id is an identifier a client may give something new.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// ValidReference reports whether id may name something that exists: every identifier
// ValidID accepts, and those an older version accepted.
func ValidReference(id string) bool { return referencePattern.MatchString(id) }

// checkNewID checks the identifier of something a command creates.
func checkNewID(field, id string) error {
	if !ValidID(id) {
		return invalid(field, "must match %s, got %q", IDPattern, truncate(id, 80))
	}
	return nil
}

// checkID checks an identifier that names something existing (or that the automation
// derived from one).
func checkID(field, id string) error {
	if !ValidReference(id) {
		return invalid(field, "must match ^[A-Za-z0-9._-]{1,64}$, got %q", truncate(id, 80))
	}
	return nil
}

// truncate cuts s to n characters for an error message, marking the cut.
func truncate(s string, n int) string {
	if chars(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// chars counts the characters of s, which is how every length limit is stated and checked:
// 200 × "é" is 200 characters, not 400 bytes.
func chars(s string) int { return utf8.RuneCountInString(s) }
