package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain gives every process these tests start one master key file, as the processes of a
// PostgreSQL deployment share one; the binary creates it on the first new store.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orderledger-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("ORDERLEDGER_MASTER_KEY_FILE", filepath.Join(dir, "master-key"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
