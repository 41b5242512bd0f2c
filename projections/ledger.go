package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Ledger accounts.
const (
	AccountReceivable = "accounts_receivable"
	AccountCash       = "cash"
	AccountRevenue    = "revenue"
	AccountTaxPayable = "tax_payable"
)

// accounts are listed in this order in the trial balance.
var accounts = []string{AccountReceivable, AccountCash, AccountRevenue, AccountTaxPayable}

// Entry kinds, one per document that posts.
const (
	EntryInvoice    = "invoice"
	EntryPayment    = "payment"
	EntryCreditNote = "credit_note"
	EntryRefund     = "refund"
)

// LedgerEntry is a journal entry: one document's postings, debits equal to credits.
// Its ID is the ID of the event that posted it, so a replay posts the same entries.
type LedgerEntry struct {
	EntryID  string       `json:"entry_id"`
	OrderID  string       `json:"order_id"`
	Currency string       `json:"currency"`
	Kind     string       `json:"kind"`
	Document string       `json:"document"`
	Lines    []LedgerLine `json:"lines"`
	PostedAt time.Time    `json:"posted_at"`
}

// LedgerLine posts an amount to one side of an account.
type LedgerLine struct {
	Account string `json:"account"`
	Debit   int64  `json:"debit"`
	Credit  int64  `json:"credit"`
}

// TrialBalance is the document of GET /v1/ledger/trial-balance: each account's turnover in
// one currency.
type TrialBalance struct {
	Currency    string           `json:"currency"`
	Accounts    []AccountBalance `json:"accounts"`
	TotalDebit  Amount           `json:"total_debit"`
	TotalCredit Amount           `json:"total_credit"`
}

// AccountBalance is the sum of an account's debits and of its credits.
type AccountBalance struct {
	Account string `json:"account"`
	Debit   Amount `json:"debit"`
	Credit  Amount `json:"credit"`
}

// Posting returns the journal entry a document event posts (the chart of docs/api.md), and false for
// other events:
//
//	invoice      Dr accounts_receivable total / Cr revenue subtotal / Cr tax_payable tax
//	payment      Dr cash / Cr accounts_receivable
//	credit note  Dr revenue net + Dr tax_payable tax / Cr accounts_receivable total
//	refund       Dr accounts_receivable / Cr cash
func Posting(entryID string, e domain.Event) (LedgerEntry, bool) {
	dr := func(account string, amount int64) LedgerLine { return LedgerLine{Account: account, Debit: amount} }
	cr := func(account string, amount int64) LedgerLine { return LedgerLine{Account: account, Credit: amount} }
	entry := LedgerEntry{EntryID: entryID}
	switch e := e.(type) {
	case domain.OrderInvoiced:
		entry.OrderID, entry.Kind, entry.Document, entry.PostedAt = e.OrderID, EntryInvoice, e.InvoiceNumber, e.InvoicedAt
		entry.Lines = []LedgerLine{dr(AccountReceivable, e.Total), cr(AccountRevenue, e.Subtotal), cr(AccountTaxPayable, e.Tax)}
	case domain.PaymentReceived:
		entry.OrderID, entry.Kind, entry.Document, entry.PostedAt = e.OrderID, EntryPayment, e.PaymentID, e.ReceivedAt
		entry.Lines = []LedgerLine{dr(AccountCash, e.Amount), cr(AccountReceivable, e.Amount)}
	case domain.CreditNoteIssued:
		entry.OrderID, entry.Kind, entry.Document, entry.PostedAt = e.OrderID, EntryCreditNote, e.CreditNoteNumber, e.IssuedAt
		entry.Lines = []LedgerLine{dr(AccountRevenue, e.Net), dr(AccountTaxPayable, e.Tax), cr(AccountReceivable, e.Total)}
	case domain.RefundIssued:
		entry.OrderID, entry.Kind, entry.Document, entry.PostedAt = e.OrderID, EntryRefund, e.RefundID, e.RefundedAt
		entry.Lines = []LedgerLine{dr(AccountReceivable, e.Amount), cr(AccountCash, e.Amount)}
	default:
		return LedgerEntry{}, false
	}
	entry.PostedAt = microsTime(entry.PostedAt.UnixMicro())
	return entry, true
}

// accountColumns are the columns of rm_ledger_entries that hold what an entry posts to each
// account, in the order of accounts: debit, credit, debit, credit…, so that a trial balance
// is one sum per column.
var accountColumns = []string{
	"receivable_debit", "receivable_credit", "cash_debit", "cash_credit",
	"revenue_debit", "revenue_credit", "tax_payable_debit", "tax_payable_credit",
}

var ledgerEntriesTable = table{name: "rm_ledger_entries", key: 1, columns: append([]string{
	"entry_id", "order_id", "currency", "kind", "document", "posted_at", "lines",
}, accountColumns...)}

var ledgerOrdersTable = table{name: "rm_ledger_orders", key: 1, columns: []string{"order_id", "currency"}}

var ledgerCurrenciesTable = table{name: "rm_ledger_currencies", key: 1, columns: []string{"currency"}}

// ledgerProjector posts the journal (rm_ledger_entries), each entry in its order's currency
// (rm_ledger_orders remembers it), and lists the currencies the books hold
// (rm_ledger_currencies).
type ledgerProjector struct{}

var ledgerEventTypes = typesOf(domain.OrderPlaced{}, domain.OrderInvoiced{}, domain.PaymentReceived{}, domain.CreditNoteIssued{}, domain.RefundIssued{})

func (ledgerProjector) name() string { return "ledger" }
func (ledgerProjector) tables() []string {
	return []string{"rm_ledger_entries", "rm_ledger_orders", "rm_ledger_currencies"}
}
func (ledgerProjector) handles(t string) bool { return ledgerEventTypes[t] }
func (ledgerProjector) newBatch(d dialect) batch {
	return &ledgerBatch{d: d, currencies: map[string]string{}, booked: map[string]bool{}}
}

type ledgerBatch struct {
	d dialect
	// currencies maps each order the batch knows to its currency.
	currencies map[string]string
	// booked holds the currencies known to be in rm_ledger_currencies.
	booked        map[string]bool
	placed        [][]any
	entries       [][]any
	newCurrencies [][]any
}

// load reads the currencies of the orders the events post for.
func (b *ledgerBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var ids keySet
	for _, e := range events {
		if _, placed := e.data.(domain.OrderPlaced); !placed {
			if id := orderIDOf(e.data); b.currencies[id] == "" {
				ids.add(id)
			}
		}
	}
	return selectIn(ctx, q, b.d, "SELECT order_id, currency FROM rm_ledger_orders WHERE order_id IN ({keys})", ids.keys, func(r *sql.Rows) error {
		var id, currency string
		err := r.Scan(&id, &currency)
		b.currencies[id] = currency
		return err
	})
}

func (b *ledgerBatch) apply(env envelope) error {
	if e, ok := env.data.(domain.OrderPlaced); ok {
		if _, exists := b.currencies[e.OrderID]; exists {
			return fmt.Errorf("order %s is placed a second time", e.OrderID)
		}
		b.currencies[e.OrderID] = e.Currency
		b.placed = append(b.placed, []any{e.OrderID, e.Currency})
		return nil
	}
	entry, ok := Posting(env.meta.ID.String(), env.data)
	if !ok {
		return fmt.Errorf("%s posts nothing", env.meta.Type)
	}
	currency, ok := b.currencies[entry.OrderID]
	if !ok {
		return fmt.Errorf("order %s: %w", entry.OrderID, errNotPlaced)
	}
	entry.Currency = currency
	var (
		debit, credit Amount
		perAccount    = make([]int64, len(accountColumns))
	)
	for _, l := range entry.Lines {
		if l.Debit < 0 || l.Credit < 0 {
			return fmt.Errorf("a negative amount posted to %s", l.Account)
		}
		debit, credit = debit.Add(l.Debit), credit.Add(l.Credit)
		i := slices.Index(accounts, l.Account)
		if i < 0 {
			return fmt.Errorf("a posting to an account not in the chart: %s", l.Account)
		}
		// An entry posts to an account once, and each amount fits in int64.
		perAccount[2*i] += l.Debit
		perAccount[2*i+1] += l.Credit
	}
	if debit != credit {
		return fmt.Errorf("entry does not balance: debit %s, credit %s", debit, credit)
	}
	lines, err := json.Marshal(entry.Lines)
	if err != nil {
		return err
	}
	row := []any{entry.EntryID, entry.OrderID, entry.Currency, entry.Kind, entry.Document, entry.PostedAt.UnixMicro(), string(lines)}
	for _, v := range perAccount {
		row = append(row, v)
	}
	b.entries = append(b.entries, row)
	if !b.booked[currency] {
		b.booked[currency] = true
		b.newCurrencies = append(b.newCurrencies, []any{currency})
	}
	return nil
}

func (b *ledgerBatch) written() int {
	b.placed, b.entries, b.newCurrencies = nil, nil, nil
	return len(b.currencies)
}

func (b *ledgerBatch) flush(ctx context.Context, tx execer) error {
	if err := ledgerOrdersTable.insert(ctx, tx, b.d, b.placed); err != nil {
		return err
	}
	if err := ledgerEntriesTable.insert(ctx, tx, b.d, b.entries); err != nil {
		return err
	}
	return ledgerCurrenciesTable.insertRows(ctx, tx, b.d, b.newCurrencies, " ON CONFLICT (currency) DO NOTHING")
}

// LedgerCurrencies lists the currencies the books hold, in code order.
func (s *ReadStore) LedgerCurrencies(ctx context.Context) ([]string, error) {
	currencies := []string{}
	err := queryRows(ctx, s.reads, s.dialect, "SELECT currency FROM rm_ledger_currencies ORDER BY currency", nil, func(r *sql.Rows) error {
		var c string
		err := r.Scan(&c)
		currencies = append(currencies, c)
		return err
	})
	return currencies, err
}

// TrialBalance returns every account's turnover in a currency and the totals, exactly, from
// the entries posted at or before to (all of them when to is zero): the books as they stood
// at a closing date, read from the journal rather than replayed.
func (s *ReadStore) TrialBalance(ctx context.Context, currency string, to time.Time) (TrialBalance, error) {
	var sums []string
	for _, c := range accountColumns {
		sums = append(sums, sumSplit(c))
	}
	q := "SELECT " + strings.Join(sums, ", ") + " FROM rm_ledger_entries WHERE currency = ?"
	args := []any{currency}
	if !to.IsZero() {
		q, args = q+" AND posted_at <= ?", append(args, to.UnixMicro())
	}
	tb := TrialBalance{Currency: currency, Accounts: make([]AccountBalance, len(accounts))}
	err := queryRows(ctx, s.reads, s.dialect, q, args, func(r *sql.Rows) error {
		var (
			split []*splitSum
			dest  []any
		)
		for i, name := range accounts {
			tb.Accounts[i].Account = name
			split = append(split, &splitSum{into: &tb.Accounts[i].Debit}, &splitSum{into: &tb.Accounts[i].Credit})
		}
		for _, s := range split {
			dest = append(dest, s.targets()...)
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		for _, s := range split {
			s.done()
		}
		return nil
	})
	for i, a := range tb.Accounts {
		a.Account = accounts[i]
		tb.Accounts[i] = a
		tb.TotalDebit = tb.TotalDebit.Plus(a.Debit)
		tb.TotalCredit = tb.TotalCredit.Plus(a.Credit)
	}
	return tb, err
}

// LedgerFilter selects journal entries.
type LedgerFilter struct {
	OrderID  string // empty: every order
	Currency string // empty: every currency
	// After continues a listing after this entry (exclusive).
	After *LedgerKey
	Limit int
}

// LedgerKey is an entry's place in the journal: by posting time, then entry_id.
type LedgerKey struct {
	PostedAt time.Time
	EntryID  string
}

const ledgerEntryColumns = "entry_id, order_id, currency, kind, document, posted_at, lines"

func scanLedgerEntry(r *sql.Rows) (LedgerEntry, error) {
	var (
		e      LedgerEntry
		posted int64
		lines  string
	)
	if err := r.Scan(&e.EntryID, &e.OrderID, &e.Currency, &e.Kind, &e.Document, &posted, &lines); err != nil {
		return e, err
	}
	e.PostedAt = microsTime(posted)
	if err := json.Unmarshal([]byte(lines), &e.Lines); err != nil {
		return e, fmt.Errorf("entry %s: lines: %w", e.EntryID, err)
	}
	return e, nil
}

// LedgerEntries lists journal entries oldest first; next is nil on the last page.
func (s *ReadStore) LedgerEntries(ctx context.Context, f LedgerFilter) (items []LedgerEntry, next *LedgerKey, err error) {
	var (
		where []string
		args  []any
	)
	if f.OrderID != "" {
		where, args = append(where, "order_id = ?"), append(args, f.OrderID)
	}
	if f.Currency != "" {
		where, args = append(where, "currency = ?"), append(args, f.Currency)
	}
	if f.After != nil {
		where = append(where, "(posted_at, entry_id) > (?, ?)")
		args = append(args, f.After.PostedAt.UnixMicro(), f.After.EntryID)
	}
	q := "SELECT " + ledgerEntryColumns + " FROM rm_ledger_entries"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY posted_at, entry_id LIMIT ?"
	args = append(args, f.Limit+1)
	items = []LedgerEntry{}
	err = queryRows(ctx, s.reads, s.dialect, q, args, func(r *sql.Rows) error {
		e, err := scanLedgerEntry(r)
		items = append(items, e)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(items) > f.Limit {
		items = items[:f.Limit]
		last := items[len(items)-1]
		next = &LedgerKey{PostedAt: last.PostedAt, EntryID: last.EntryID}
	}
	return items, next, nil
}

// JournalFilter selects the entries of a journal export: one currency, posted from From
// (inclusive, open when zero) to To (inclusive, open when zero), as TrialBalance's to.
type JournalFilter struct {
	Currency string
	From, To time.Time
}

// EachLedgerEntry calls fn with every entry f selects, oldest first (by posting time, then
// entry_id), from one snapshot of the read model.
func (s *ReadStore) EachLedgerEntry(ctx context.Context, f JournalFilter, fn func(LedgerEntry) error) error {
	q := "SELECT " + ledgerEntryColumns + " FROM rm_ledger_entries WHERE currency = ?"
	args := []any{f.Currency}
	if !f.From.IsZero() {
		q, args = q+" AND posted_at >= ?", append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		q, args = q+" AND posted_at <= ?", append(args, f.To.UnixMicro())
	}
	q += " ORDER BY posted_at, entry_id"
	return s.readTx(ctx, func(tx *sql.Tx) error {
		return queryRows(ctx, tx, s.dialect, q, args, func(r *sql.Rows) error {
			e, err := scanLedgerEntry(r)
			if err != nil {
				return err
			}
			return fn(e)
		})
	})
}
