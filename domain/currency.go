package domain

import (
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// activeCurrencies maps each ISO 4217 code currently legal tender somewhere to its minor-unit
// digits, both from golang.org/x/text/currency (CLDR data): its default query lists only the
// currencies in use today, so historic codes (DEM, FRF…) and funds or metals (XAU, XXX) are
// left out, and its standard rounding gives the digits (EUR 2, JPY 0, BHD 3).
var activeCurrencies = func() map[string]int {
	active := map[string]int{}
	for it := currency.Query(); it.Next(); {
		unit := it.Unit()
		digits, _ := currency.Standard.Rounding(unit)
		active[unit.String()] = digits
	}
	return active
}()

// ValidCurrency reports whether c is an active ISO 4217 code, which an order may be placed in.
func ValidCurrency(c string) bool {
	_, ok := activeCurrencies[c]
	return ok
}

// CurrencyDigits is how many digits of minor units a currency's major unit has: 2 for EUR
// (1250 is 12.50), 0 for JPY, 3 for BHD. A code this build does not know as active (a historic
// one x/text knows, or one an older version accepted into the log) gets x/text's digits when it
// has them, and otherwise 0: its amounts then print as the minor units they are.
func CurrencyDigits(c string) int {
	if digits, ok := activeCurrencies[c]; ok {
		return digits
	}
	if unit, err := currency.ParseISO(c); err == nil && unit.String() == c {
		digits, _ := currency.Standard.Rounding(unit)
		return digits
	}
	return 0
}

// MajorUnits writes an amount of minor units in major units with the currency's digits:
// 1250 EUR is "12.50", 1500 JPY "1500", -5 EUR "-0.05". The amount is a decimal integer
// string (as big.Int.String gives), so sums beyond int64 print exactly too.
func MajorUnits(minor string, currencyCode string) string {
	digits := CurrencyDigits(currencyCode)
	sign := ""
	if strings.HasPrefix(minor, "-") {
		sign, minor = "-", minor[1:]
	}
	if digits == 0 {
		return sign + minor
	}
	if len(minor) <= digits {
		minor = strings.Repeat("0", digits-len(minor)+1) + minor
	}
	cut := len(minor) - digits
	return sign + minor[:cut] + "." + minor[cut:]
}

// FormatAmount is MajorUnits of an int64 amount followed by the currency code: "12.50 EUR".
func FormatAmount(minor int64, currencyCode string) string {
	return MajorUnits(strconv.FormatInt(minor, 10), currencyCode) + " " + currencyCode
}
