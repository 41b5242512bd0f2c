package stores

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// A store that cannot be opened comes back as a nil interface with an error, never as an
// interface holding a nil pointer (which a caller's Close would dereference).
func TestFailedOpenIsANilStore(t *testing.T) {
	cases := map[string]string{
		"kurrentdb unreachable": "esdb://127.0.0.1:1?tls=false",
		"kurrentdb malformed":   "kurrentdb://127.0.0.1:1?tls=maybe",
		"postgres unreachable":  "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"sqlite in a file":      "sqlite:" + filepath.Join(t.TempDir(), "file", "x.db"),
	}
	// Make the sqlite path's parent a file, so the open fails.
	if err := writeFile(filepath.Join(filepath.Dir(filepath.Dir(cases["sqlite in a file"][len("sqlite:"):])), "file")); err != nil {
		t.Fatal(err)
	}
	for name, dsn := range cases {
		t.Run(name, func(t *testing.T) {
			started := time.Now()
			store, err := OpenEvents(t.Context(), dsn)
			if err == nil {
				store.Close()
				t.Fatalf("opened %s", dsn)
			}
			if store != nil {
				t.Fatalf("failed open returned a non-nil store %#v", store)
			}
			if name == "kurrentdb unreachable" && !errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("unreachable KurrentDB: %v, want ErrUnavailable", err)
			}
			t.Logf("%s: %v (after %s)", name, err, time.Since(started).Round(time.Millisecond))
		})
	}
}

func TestKindAndReadDSN(t *testing.T) {
	for dsn, want := range map[string]Kind{
		"sqlite:./x.db": SQLite, "postgres://h/db": Postgres, "postgresql://h/db": Postgres,
		"esdb://h:2113": KurrentDB, "kurrentdb+discover://h": KurrentDB,
	} {
		if got, err := KindOf(dsn); err != nil || got != want {
			t.Errorf("KindOf(%q) = %v, %v; want %v", dsn, got, err, want)
		}
	}
	for _, bad := range []string{"", "sqlite:", "mysql://h/db", "./file.db"} {
		if _, err := KindOf(bad); err == nil {
			t.Errorf("KindOf(%q) accepted", bad)
		}
	}
	if _, err := ReadDSN("esdb://h:2113", ""); err == nil {
		t.Error("KurrentDB events without --read accepted")
	}
	if got, err := ReadDSN("sqlite:./a.db", ""); err != nil || got != "sqlite:./a.db" {
		t.Errorf("ReadDSN default = %q, %v", got, err)
	}
	if _, err := ReadDSN("sqlite:./a.db", "esdb://h"); err == nil {
		t.Error("a KurrentDB read store accepted")
	}
	if got := Redact("postgres://u:secret@h/db"); got != "postgres://u:***@h/db" {
		t.Errorf("Redact = %q", got)
	}
}

func writeFile(path string) error {
	return os.WriteFile(path, []byte("not a directory"), 0o644)
}
