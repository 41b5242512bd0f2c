// Package e2e tests orderledger from the outside: it builds the real binary once, starts it as
// a subprocess on SQLite and on PostgreSQL, speaks HTTP to it, kills and restarts it, and
// checks what it wrote by opening the event store directly.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the orderledger executable TestMain built.
var binary string

// masterKeyFile is the master key every process the tests start is given.
var masterKeyFile string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "orderledger-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "orderledger")
	// Every process of these tests shares one master key file, as the processes of a
	// PostgreSQL deployment must; the binary creates it on the first new store.
	masterKeyFile = filepath.Join(dir, "master-key")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go tool is not on PATH, so the binary cannot be built:", err)
		return 1
	}
	build := exec.Command(goTool, "build", "-o", binary, "github.com/orderledger/orderledger/cmd/orderledger")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/orderledger:", err)
		return 1
	}
	if checker, err = newConformance(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if !checker.report() && code == 0 {
		fmt.Fprintln(os.Stderr, "FAIL: answers or requests that internal/openapi/openapi.json does not describe (above)")
		code = 1
	}
	return code
}
