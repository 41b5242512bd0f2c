package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/readapi"
)

func newLedgerCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Take the books out: the ledger's journal for accounting tools",
	}
	cmd.AddCommand(newLedgerJournalCmd(cfg))
	return cmd
}

func newLedgerJournalCmd(cfg *config) *cobra.Command {
	var currency, format, from, to string
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Print one currency's ledger as an hledger / ledger-cli journal (or CSV) on stdout",
		Long: `Print the ledger entries of one currency, oldest first, as GET /v1/ledger/journal answers
them: a plain-text double-entry journal that hledger and ledger-cli read as is (amounts in major
units with the currency's digits, debits positive, credits negative), or with --format csv one
row per posting in minor units. It reads the read models as they stand: run it beside a serve
that projects, or after "orderledger projections rebuild".

  orderledger ledger journal --currency EUR | hledger -f - balance

--from and --to take a date (a whole UTC day) or an RFC 3339 time; both are inclusive, so
hledger's balance over --to D equals GET /v1/ledger/trial-balance?to=D.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f := projections.JournalFilter{Currency: currency}
			if !currencyCode(currency) {
				return fmt.Errorf("--currency: want an ISO 4217 code such as EUR, got %q", currency)
			}
			if format != projections.JournalText && format != projections.JournalCSV {
				return fmt.Errorf("--format: want %s or %s, got %q", projections.JournalText, projections.JournalCSV, format)
			}
			var err error
			for _, b := range []struct {
				name, raw string
				dst       *time.Time
				isEnd     bool
			}{{"--from", from, &f.From, false}, {"--to", to, &f.To, true}} {
				if b.raw == "" {
					continue
				}
				if *b.dst, err = projections.ParseBooksBound(b.raw, b.isEnd); err != nil {
					return fmt.Errorf("%s: %w", b.name, err)
				}
			}
			readDSN, err := cfg.readDSN()
			if err != nil {
				return err
			}
			read, err := projections.OpenReadStore(ctx, readDSN)
			if err != nil {
				return err
			}
			defer read.Close()
			return read.WriteJournal(ctx, cmd.OutOrStdout(), f, format)
		},
	}
	cmd.Flags().StringVar(&currency, "currency", envOr("ORDERLEDGER_BASE_CURRENCY", readapi.DefaultBaseCurrency),
		"the currency of the books to print (env ORDERLEDGER_BASE_CURRENCY)")
	cmd.Flags().StringVar(&format, "format", projections.JournalText, "journal (hledger / ledger-cli) or csv")
	cmd.Flags().StringVar(&from, "from", "", "only postings at or after this date or RFC 3339 time")
	cmd.Flags().StringVar(&to, "to", "", "only postings at or before this date (through its end) or RFC 3339 time")
	return cmd
}

// currencyCode reports whether c has the shape of an ISO 4217 code. Books in a code an older
// version accepted stay printable, so the active list is not required here.
func currencyCode(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
