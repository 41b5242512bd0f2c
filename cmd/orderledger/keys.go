package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
)

// keyStoreDSN is the database that holds the data keys: the event store's where that is SQL,
// else the read store's (KurrentDB has no table to keep them in).
func (c *config) keyStoreDSN() (string, error) {
	kind, err := stores.KindOf(c.events)
	if err != nil {
		return "", err
	}
	if kind != stores.KurrentDB {
		return c.events, nil
	}
	return c.readDSN()
}

// masterKeyPath is --master-key-file, or the default beside a SQLite key store.
func (c *config) masterKeyPath(keyDSN string) string {
	if c.masterKeyFile != "" {
		return c.masterKeyFile
	}
	if kind, _ := stores.KindOf(keyDSN); kind == stores.SQLite {
		return privacy.DefaultMasterKeyFile(stores.SQLitePath(keyDSN))
	}
	return ""
}

// openKeys opens the key store with the master key, creating both on a new installation.
func (c *config) openKeys(ctx context.Context) (*privacy.Keys, error) {
	dsn, err := c.keyStoreDSN()
	if err != nil {
		return nil, err
	}
	return privacy.Open(ctx, dsn, c.masterKeyPath(dsn), privacy.CreateIfNew())
}

// private wraps an event store so that personal data is sealed on append and opened on read.
// On failure it closes store.
func (c *config) private(ctx context.Context, store eventstore.Store) (eventstore.Store, error) {
	keys, err := c.openKeys(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	return privacy.Wrap(store, keys), nil
}

func newKeysCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the master key that wraps the customers' data keys",
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-wrap every data key with a new master key, and replace the master key file",
		Long: `Draw a new master key, re-wrap every customer's data key with it in one transaction, and
replace the master key file (--master-key-file, or the default beside a SQLite store) with it.
The log is not touched. Back the new file up: backups of the database taken from now on need
it, and older ones the old key. Exit 0 when done, 2 when the master key is missing or wrong.`,
		Args: exitCodeArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := cfg.openKeys(cmd.Context())
			if err != nil {
				return &exitError{code: exitCantRun, err: err}
			}
			defer keys.Close()
			n, err := keys.Rotate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d data keys with a new master key, now in %s\n", n, keys.MasterKeyFile())
			return nil
		},
	}
	cmd.AddCommand(rotate)
	return cmd
}
