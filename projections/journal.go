package projections

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Journal export formats.
const (
	JournalText = "journal" // hledger / ledger-cli journal
	JournalCSV  = "csv"     // one row per posting, in minor units
)

// ParseBooksBound reads a bound of the books (the to of a trial balance, the from and to of a
// journal): a date (2025-03-01) stands for that whole UTC day, an RFC 3339 time is exact.
// For the end (to), postings at or before it count: a date's end is its last microsecond
// (times are kept to the microsecond). For the start (from), postings at or after it.
func ParseBooksBound(raw string, isEnd bool) (time.Time, error) {
	if day, err := time.Parse(time.DateOnly, raw); err == nil {
		if isEnd {
			return day.AddDate(0, 0, 1).Add(-time.Microsecond), nil
		}
		return day, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date (2025-03-01) or an RFC 3339 time (2025-03-01T09:30:00Z), got %q", raw)
	}
	return t.UTC(), nil
}

// JournalCSVHeader is the header row of the CSV journal.
var JournalCSVHeader = []string{"entry_id", "posted_at", "order_id", "kind", "document", "account", "debit", "credit", "currency"}

// WriteJournal writes the entries f selects, oldest first, as a plain-text double-entry
// journal that hledger and ledger-cli read as is (format "journal") or as CSV in minor units
// (format "csv"). In the journal each entry is a transaction dated by its posting date (UTC)
// and described by its kind, document and order; each line posts to one account of the chart
// an amount in major units with the currency's digits and its code as commodity, debits
// positive and credits negative, so that hledger's balance of an account is its debits less
// its credits in the trial balance.
func (s *ReadStore) WriteJournal(ctx context.Context, w io.Writer, f JournalFilter, format string) error {
	switch format {
	case JournalText:
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, "; orderledger journal, currency %s, amounts in major units (%d digits)\n\n", f.Currency, domain.CurrencyDigits(f.Currency))
		err := s.EachLedgerEntry(ctx, f, func(e LedgerEntry) error {
			writeTransaction(bw, e)
			return nil
		})
		if err != nil {
			return err
		}
		return bw.Flush()
	case JournalCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(JournalCSVHeader); err != nil {
			return err
		}
		err := s.EachLedgerEntry(ctx, f, func(e LedgerEntry) error {
			for _, l := range e.Lines {
				if err := cw.Write([]string{e.EntryID, e.PostedAt.UTC().Format(time.RFC3339Nano), e.OrderID, e.Kind, e.Document,
					l.Account, strconv.FormatInt(l.Debit, 10), strconv.FormatInt(l.Credit, 10), e.Currency}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("journal format %q: want %s or %s", format, JournalText, JournalCSV)
}

// writeTransaction writes one entry as a journal transaction. Identifiers hold only letters,
// digits, ".", "_" and "-", so nothing in the description needs quoting.
func writeTransaction(w *bufio.Writer, e LedgerEntry) {
	fmt.Fprintf(w, "%s %s %s order %s  ; entry_id:%s, posted_at:%s\n",
		e.PostedAt.UTC().Format(time.DateOnly), e.Kind, e.Document, e.OrderID, e.EntryID, e.PostedAt.UTC().Format(time.RFC3339Nano))
	for _, l := range e.Lines {
		amount := l.Debit - l.Credit // one of the two is 0
		fmt.Fprintf(w, "    %-22s %s\n", l.Account, domain.FormatAmount(amount, e.Currency))
	}
	w.WriteByte('\n')
}
