package projections

import (
	"errors"
	"fmt"
	"math/big"
)

// amountBase splits an Amount into its two int64 parts.
const amountBase = 1_000_000_000_000_000_000 // 10^18

// Amount is an exact sum of minor units, which may grow past int64: hi × 10^18 + lo, with
// 0 ≤ lo < 10^18. Each order's amounts fit in int64 (the domain caps a total at 10^13), but a
// sum over many orders need not, and a sum must never wrap or fail. hi would need more than
// 10^36 minor units to overflow: 10^23 orders at the cap.
//
// It is written in JSON as a plain integer, exactly, however large; in SQL as the two BIGINT
// columns of its parts, which sort by (hi, lo) as the amounts do.
type Amount struct{ hi, lo int64 }

// AmountOf is the Amount of v minor units.
func AmountOf(v int64) Amount { return Amount{}.Add(v) }

// Add returns a + v.
func (a Amount) Add(v int64) Amount {
	a.hi += v / amountBase
	a.lo += v % amountBase // |v % 10^18| < 10^18 and 0 ≤ lo < 10^18: no overflow
	return a.normal()
}

// Sub returns a − v.
func (a Amount) Sub(v int64) Amount {
	a.hi -= v / amountBase
	a.lo -= v % amountBase
	return a.normal()
}

// Plus returns a + b.
func (a Amount) Plus(b Amount) Amount {
	a.hi += b.hi
	a.lo += b.lo
	return a.normal()
}

// Minus returns a − b.
func (a Amount) Minus(b Amount) Amount {
	a.hi -= b.hi
	a.lo -= b.lo
	return a.normal()
}

// normal brings lo back into [0, 10^18) after one addition of a part in (−10^18, 10^18).
func (a Amount) normal() Amount {
	switch {
	case a.lo >= amountBase:
		a.hi, a.lo = a.hi+1, a.lo-amountBase
	case a.lo < 0:
		a.hi, a.lo = a.hi-1, a.lo+amountBase
	}
	return a
}

// Cmp compares a and b: −1, 0 or +1.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a == Amount{} }

// Int64 returns a as an int64 when it fits.
func (a Amount) Int64() (int64, bool) {
	b := a.Big()
	return b.Int64(), b.IsInt64()
}

// Big returns a as a big.Int.
func (a Amount) Big() *big.Int {
	b := new(big.Int).Mul(big.NewInt(a.hi), big.NewInt(amountBase))
	return b.Add(b, big.NewInt(a.lo))
}

// AmountFromBig is the Amount of b, or an error if b is beyond what an Amount holds.
func AmountFromBig(b *big.Int) (Amount, error) {
	hi, lo := new(big.Int).DivMod(b, big.NewInt(amountBase), new(big.Int)) // Euclidean: 0 ≤ lo < 10^18
	if !hi.IsInt64() {
		return Amount{}, fmt.Errorf("amount %s is beyond ±9.2×10^36 minor units", b)
	}
	return Amount{hi: hi.Int64(), lo: lo.Int64()}, nil
}

// String is a in decimal.
func (a Amount) String() string { return a.Big().String() }

// MarshalJSON writes a as a JSON integer.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads a JSON integer of any size.
func (a *Amount) UnmarshalJSON(data []byte) error {
	b, ok := new(big.Int).SetString(string(data), 10)
	if !ok {
		return errors.New("amount: not a JSON integer: " + string(data))
	}
	v, err := AmountFromBig(b)
	*a = v
	return err
}

// splitDivisor splits each amount SQL sums into a quotient and a remainder whose sums are
// exact in BIGINT arithmetic (SQLite's SUM fails on an overflow, PostgreSQL's sum of BIGINT
// is NUMERIC but scanned into int64): sumSplit(col) sums a column exactly as long as the
// rows number fewer than 9.2 × 10^9, whatever their amounts.
const splitDivisor = 1_000_000_000 // 10^9

// sumSplit is the SQL of the two sums whose scanned values amountFromSplit combines.
func sumSplit(column string) string {
	return fmt.Sprintf("COALESCE(SUM(%[1]s / %[2]d), 0), COALESCE(SUM(%[1]s %% %[2]d), 0)", column, splitDivisor)
}

// amountFromSplit is Σ quotients × 10^9 + Σ remainders, exactly: both databases divide
// integers truncating toward zero, so each row's quotient × 10^9 + remainder is the row.
func amountFromSplit(quotients, remainders int64) Amount {
	// quotients × 10^9 = (quotients / 10^9) × 10^18 + (quotients % 10^9) × 10^9.
	a := Amount{hi: quotients / splitDivisor}
	return a.Add((quotients % splitDivisor) * splitDivisor).Add(remainders)
}

// splitSum scans the two columns of sumSplit into an Amount.
type splitSum struct {
	quotients, remainders int64
	into                  *Amount
}

// targets are the scan destinations of sumSplit's two columns.
func (s *splitSum) targets() []any { return []any{&s.quotients, &s.remainders} }

// done stores the scanned amount.
func (s *splitSum) done() { *s.into = amountFromSplit(s.quotients, s.remainders) }
