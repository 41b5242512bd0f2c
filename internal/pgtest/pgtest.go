package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the DSN of the server tests use.
const EnvDSN = "ORDERLEDGER_TEST_POSTGRES"

// DefaultDSN is the server tests use when EnvDSN is unset: a local PostgreSQL with trust auth.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// adminTimeout bounds creating and dropping a database, so a hung server fails the test
// instead of hanging it.
const adminTimeout = 30 * time.Second

// ServerDSN returns the DSN of the server tests use: EnvDSN, or DefaultDSN when it is unset.
func ServerDSN() string {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// NewDatabase creates an empty database with a unique name on the test server, returns its
// DSN, and drops it (with FORCE, so connections still open do not keep it) when tb ends.
// Benchmarks pass their *testing.B like a test.
//
// When the server cannot be reached the test is skipped with the reason, except under CI=true
// where a missing server is a failure: CI must run these tests, not skip them silently.
func NewDatabase(tb testing.TB) (dsn string) {
	tb.Helper()
	server := ServerDSN()
	ctx, cancel := context.WithTimeout(tb.Context(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		unreachable(tb, server, err)
	}
	defer conn.Close(ctx)

	name := "ol_test_" + randomHex(tb)
	// template0 accepts no connections, so concurrent CREATE DATABASE calls cannot fail with
	// "source database is being accessed by other users" as they can with template1.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() { dropDatabase(tb, server, name) })

	dsn, err = withDatabase(server, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

func unreachable(tb testing.TB, server string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("pgtest: PostgreSQL at %s is unreachable under CI=true: %v", redact(server), err)
	}
	tb.Skipf("pgtest: skipping, PostgreSQL at %s is unreachable (%v); start a server or set %s to the DSN of one",
		redact(server), err, EnvDSN)
}

func dropDatabase(tb testing.TB, server, name string) {
	tb.Helper()
	// The test's own context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tb.Context()), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Errorf("pgtest: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Errorf("pgtest: drop database %s: %v", name, err)
	}
}

func randomHex(tb testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("pgtest: random name: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// withDatabase returns server's DSN pointing at database name instead, in either DSN form
// libpq and pgx accept: a URL or keyword=value pairs.
func withDatabase(server, name string) (string, error) {
	if strings.HasPrefix(server, "postgres://") || strings.HasPrefix(server, "postgresql://") {
		u, err := url.Parse(server)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvDSN, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// In keyword=value form a later keyword overrides an earlier one.
	return server + " dbname=" + name, nil
}

// keywordPassword finds a password in a keyword=value DSN.
var keywordPassword = regexp.MustCompile(`password=('[^']*'|\S*)`)

// redact hides a password in a DSN before it is printed in a test log.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return keywordPassword.ReplaceAllString(dsn, "password=xxxxx")
	}
	if u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
