package main

import (
	"fmt"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/internal/stores"
)

func newTokensCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke the bearer tokens clients call the API with",
		Long: `Tokens grant one of the roles admin, clerk, warehouse, accountant, auditor or viewer.
Creating and revoking one are events in the log, so the audit trail shows who granted what and
when; every running server sees the change within 2 s. The secret is printed once, as the last
line of stdout, and only its SHA-256 is kept.

  orderledger tokens create --name shop-frontend --role clerk
  orderledger tokens list
  orderledger tokens revoke --name shop-frontend`,
	}
	cmd.AddCommand(newTokensCreateCmd(cfg), newTokensListCmd(cfg), newTokensRevokeCmd(cfg))
	return cmd
}

// openTokens opens the event store and reads its token registry; close releases the store.
func openTokens(cmd *cobra.Command, cfg *config) (tokens *access.Tokens, close func(), err error) {
	events, err := stores.OpenEvents(cmd.Context(), cfg.events)
	if err != nil {
		return nil, nil, fmt.Errorf("open event store %s: %w", stores.Redact(cfg.events), err)
	}
	tokens = access.NewTokens(events, nil)
	if err := tokens.Refresh(cmd.Context()); err != nil {
		_ = events.Close()
		return nil, nil, err
	}
	return tokens, func() { _ = events.Close() }, nil
}

// cliActor is who the events of a token command name: the operating system's user running it.
func cliActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "cli:" + name
}

func newTokensCreateCmd(cfg *config) *cobra.Command {
	var name, role string
	cmd := &cobra.Command{
		Use:   "create --name N --role R",
		Short: "Create a token; its secret is the last line of stdout, shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := access.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			tokens, closeStore, err := openTokens(cmd, cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			secret, err := tokens.Create(cmd.Context(), name, r, cliActor(), time.Now())
			if err != nil {
				return fmt.Errorf("--name %q: %w", name, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created token %s with role %s; its secret follows and is not shown again:\n", name, r)
			fmt.Fprintln(out, secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the token's name, recorded as the actor of every event its holder causes (required)")
	cmd.Flags().StringVar(&role, "role", "", "admin, clerk, warehouse, accountant, auditor or viewer (required)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokensListCmd(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every token ever created: name, role, who created it and when, when it was revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tokens, closeStore, err := openTokens(cmd, cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED AT\tCREATED BY\tREVOKED AT")
			for _, t := range tokens.List() {
				revoked := "-"
				if t.RevokedAt != nil {
					revoked = t.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), t.CreatedBy, revoked)
			}
			return tw.Flush()
		},
	}
}

func newTokensRevokeCmd(cfg *config) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "revoke --name N",
		Short: "Revoke a token: every running server refuses it within 2 s",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tokens, closeStore, err := openTokens(cmd, cfg)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := tokens.Revoke(cmd.Context(), name, cliActor(), time.Now()); err != nil {
				return fmt.Errorf("--name %q: %w", name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the token to revoke (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
