package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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

// TrialBalance is the document of GET /v1/ledger/trial-balance: each account's turnover.
type TrialBalance struct {
	Accounts    []AccountBalance `json:"accounts"`
	TotalDebit  int64            `json:"total_debit"`
	TotalCredit int64            `json:"total_credit"`
}

// AccountBalance is the sum of an account's debits and of its credits.
type AccountBalance struct {
	Account string `json:"account"`
	Debit   int64  `json:"debit"`
	Credit  int64  `json:"credit"`
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

var ledgerEntriesTable = table{name: "rm_ledger_entries", key: 1, columns: []string{
	"entry_id", "order_id", "kind", "document", "posted_at", "lines",
}}

var ledgerAccountsTable = table{name: "rm_ledger_accounts", key: 1, columns: []string{"account", "debit", "credit"}}

// ledgerProjector posts the journal (rm_ledger_entries) and keeps each account's turnover
// (rm_ledger_accounts).
type ledgerProjector struct{}

var ledgerEventTypes = typesOf(domain.OrderInvoiced{}, domain.PaymentReceived{}, domain.CreditNoteIssued{}, domain.RefundIssued{})

func (ledgerProjector) name() string          { return "ledger" }
func (ledgerProjector) tables() []string      { return []string{"rm_ledger_entries", "rm_ledger_accounts"} }
func (ledgerProjector) handles(t string) bool { return ledgerEventTypes[t] }
func (ledgerProjector) newBatch(d dialect) batch {
	return &ledgerBatch{d: d, turnover: map[string]*AccountBalance{}}
}

type ledgerBatch struct {
	d        dialect
	entries  [][]any
	turnover map[string]*AccountBalance
}

// load reads nothing: entries are new rows and turnovers are added in SQL.
func (b *ledgerBatch) load(context.Context, queryer, []envelope) error { return nil }

func (b *ledgerBatch) apply(env envelope) error {
	entry, ok := Posting(env.meta.ID.String(), env.data)
	if !ok {
		return fmt.Errorf("%s posts nothing", env.meta.Type)
	}
	var debit, credit int64
	for _, l := range entry.Lines {
		if l.Debit < 0 || l.Credit < 0 {
			return fmt.Errorf("a negative amount posted to %s", l.Account)
		}
		debit += l.Debit
		credit += l.Credit
		t, ok := b.turnover[l.Account]
		if !ok {
			t = &AccountBalance{Account: l.Account}
			b.turnover[l.Account] = t
		}
		t.Debit += l.Debit
		t.Credit += l.Credit
	}
	if debit != credit {
		return fmt.Errorf("entry does not balance: debit %d, credit %d", debit, credit)
	}
	lines, err := json.Marshal(entry.Lines)
	if err != nil {
		return err
	}
	b.entries = append(b.entries, []any{entry.EntryID, entry.OrderID, entry.Kind, entry.Document, entry.PostedAt.UnixMicro(), string(lines)})
	return nil
}

func (b *ledgerBatch) written() int {
	b.entries, b.turnover = nil, map[string]*AccountBalance{}
	return 0
}

func (b *ledgerBatch) flush(ctx context.Context, tx execer) error {
	if err := ledgerEntriesTable.insert(ctx, tx, b.d, b.entries); err != nil {
		return err
	}
	var rows [][]any
	for _, a := range accounts {
		if t, ok := b.turnover[a]; ok {
			rows = append(rows, []any{a, t.Debit, t.Credit})
		}
	}
	return ledgerAccountsTable.insertRows(ctx, tx, b.d, rows, ` ON CONFLICT (account) DO UPDATE
		SET debit = rm_ledger_accounts.debit + excluded.debit, credit = rm_ledger_accounts.credit + excluded.credit`)
}

// TrialBalance returns every account's turnover and the totals.
func (s *ReadStore) TrialBalance(ctx context.Context) (TrialBalance, error) {
	turnover := map[string]AccountBalance{}
	err := queryRows(ctx, s.reads, s.dialect, "SELECT account, debit, credit FROM rm_ledger_accounts", nil, func(r *sql.Rows) error {
		var a AccountBalance
		err := r.Scan(&a.Account, &a.Debit, &a.Credit)
		turnover[a.Account] = a
		return err
	})
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{Accounts: make([]AccountBalance, 0, len(accounts))}
	for _, name := range accounts {
		a := turnover[name]
		a.Account = name
		tb.Accounts = append(tb.Accounts, a)
		tb.TotalDebit += a.Debit
		tb.TotalCredit += a.Credit
	}
	return tb, nil
}

// LedgerFilter selects journal entries.
type LedgerFilter struct {
	OrderID string // empty: every order
	// After continues a listing after this entry (exclusive).
	After *LedgerKey
	Limit int
}

// LedgerKey is an entry's place in the journal: by posting time, then entry_id.
type LedgerKey struct {
	PostedAt time.Time
	EntryID  string
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
	if f.After != nil {
		where = append(where, "(posted_at, entry_id) > (?, ?)")
		args = append(args, f.After.PostedAt.UnixMicro(), f.After.EntryID)
	}
	q := "SELECT entry_id, order_id, kind, document, posted_at, lines FROM rm_ledger_entries"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY posted_at, entry_id LIMIT ?"
	args = append(args, f.Limit+1)
	items = []LedgerEntry{}
	err = queryRows(ctx, s.reads, s.dialect, q, args, func(r *sql.Rows) error {
		var (
			e      LedgerEntry
			posted int64
			lines  string
		)
		if err := r.Scan(&e.EntryID, &e.OrderID, &e.Kind, &e.Document, &posted, &lines); err != nil {
			return err
		}
		e.PostedAt = microsTime(posted)
		if err := json.Unmarshal([]byte(lines), &e.Lines); err != nil {
			return fmt.Errorf("entry %s: lines: %w", e.EntryID, err)
		}
		items = append(items, e)
		return nil
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
