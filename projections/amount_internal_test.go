package projections

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// TestAmountMatchesBigIntArithmetic: any sequence of additions and subtractions of int64
// amounts, including the extremes, gives the big.Int result, also through JSON.
func TestAmountMatchesBigIntArithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var a Amount
		want := new(big.Int)
		for _, v := range rapid.SliceOf(rapid.OneOf(rapid.Int64(), rapid.SampledFrom([]int64{math.MaxInt64, math.MinInt64 + 1, 0, 1, -1, amountBase, amountBase - 1, -amountBase}))).Draw(t, "amounts") {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				a = a.Add(v)
				want.Add(want, big.NewInt(v))
			case 1:
				a = a.Sub(v)
				want.Sub(want, big.NewInt(v))
			case 2:
				b := AmountOf(v)
				a = a.Plus(b).Minus(b).Plus(b)
				want.Add(want, big.NewInt(v))
			}
			if a.lo < 0 || a.lo >= amountBase {
				t.Fatalf("%+v is not normal", a)
			}
		}
		if a.Big().Cmp(want) != 0 {
			t.Fatalf("got %s, want %s", a, want)
		}
		doc, err := json.Marshal(a)
		if err != nil || string(doc) != want.String() {
			t.Fatalf("JSON %s (%v), want %s", doc, err, want)
		}
		var back Amount
		if err := json.Unmarshal(doc, &back); err != nil || back != a {
			t.Fatalf("JSON round trip %s: %+v (%v), want %+v", doc, back, err, a)
		}
		if v, ok := a.Int64(); ok != want.IsInt64() || (ok && v != want.Int64()) {
			t.Fatalf("Int64() = %d, %v; want %s", v, ok, want)
		}
		b := AmountOf(rapid.Int64().Draw(t, "other"))
		if got, w := a.Cmp(b), want.Cmp(b.Big()); got != w {
			t.Fatalf("Cmp(%s, %s) = %d, want %d", a, b, got, w)
		}
	})
}

// TestAmountFromSplit: the two sums SQL returns for rows of any int64 amounts give their
// exact total.
func TestAmountFromSplit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var quotients, remainders int64
		want := new(big.Int)
		for _, v := range rapid.SliceOfN(rapid.Int64(), 0, 50).Draw(t, "rows") {
			quotients += v / splitDivisor
			remainders += v % splitDivisor
			want.Add(want, big.NewInt(v))
		}
		if got := amountFromSplit(quotients, remainders); got.Big().Cmp(want) != 0 {
			t.Fatalf("amountFromSplit(%d, %d) = %s, want %s", quotients, remainders, got, want)
		}
	})
}
