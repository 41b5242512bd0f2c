package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
)

// TestMasterKeyCommands runs the built binary on a SQLite store whose personal data is sealed:
// a missing or wrong master key stops serve and projections rebuild with exit 2 and a message
// naming the file; keys rotate re-wraps the data key, after which the new file opens the data
// (a rebuild reads the customer's name) and the log is untouched (audit verify).
func TestMasterKeyCommands(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	events, keyFile := "sqlite:"+path, filepath.Join(dir, "master-key")

	inner, err := stores.OpenEvents(t.Context(), events)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := privacy.Open(t.Context(), events, keyFile, privacy.CreateIfNew())
	if err != nil {
		t.Fatal(err)
	}
	store := privacy.Wrap(inner, keys)
	typ, data, _ := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: "C1", Name: "Rosa Rotation", Email: "rosa@example.pt", RegisteredAt: time.Unix(1700000000, 0).UTC()})
	if _, err := store.Append(t.Context(), "customer-C1", eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	missing := filepath.Join(dir, "nowhere", "master-key")
	out := run(t, bin, nil, 2, "projections", "rebuild", "--events", events, "--master-key-file", missing)
	if !strings.Contains(out.stderr, missing) || !strings.Contains(out.stderr, "missing") {
		t.Errorf("rebuild with a missing key: stderr %q", out.stderr)
	}
	wrong := filepath.Join(dir, "wrong-key")
	if err := os.WriteFile(wrong, []byte("orderledger-master-key-v1:"+strings.Repeat("B", 43)+"=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(t, bin, nil, 2, "serve", "--addr", "127.0.0.1:0", "--events", events, "--master-key-file", wrong)
	if !strings.Contains(out.stderr, wrong) || !strings.Contains(out.stderr, "wrong key") {
		t.Errorf("serve with a wrong key: stderr %q", out.stderr)
	}

	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out = run(t, bin, nil, 0, "keys", "rotate", "--events", events, "--master-key-file", keyFile)
	if !strings.Contains(out.stdout, "re-wrapped 1 data keys") {
		t.Errorf("keys rotate: stdout %q", out.stdout)
	}
	after, err := os.ReadFile(keyFile)
	if err != nil || string(after) == string(before) {
		t.Fatalf("keys rotate left the key file as it was (%v)", err)
	}
	old := filepath.Join(dir, "old-key")
	if err := os.WriteFile(old, before, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, bin, nil, 2, "projections", "rebuild", "--events", events, "--master-key-file", old)
	run(t, bin, nil, 0, "projections", "rebuild", "--events", events, "--master-key-file", keyFile)
	run(t, bin, nil, 0, "audit", "verify", "--events", events)

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.QueryRowContext(t.Context(), "SELECT name FROM rm_customers WHERE customer_id = 'C1'").Scan(&name); err != nil || name != "Rosa Rotation" {
		t.Errorf("after rotation a rebuild reads the name %q, %v", name, err)
	}
}
