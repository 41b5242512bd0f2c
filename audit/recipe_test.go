package audit_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// docRecipe is the part of docs/audit.md that lets an auditor recompute a digest without
// orderledger: the Python script and the shell commands that feed it.
type docRecipe struct {
	script, fromSQLite, fromPostgres string
}

var fencedBlock = regexp.MustCompile("(?s)```(python|sh)\n(.*?)```")

func readDocRecipe(t *testing.T) docRecipe {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	var r docRecipe
	for _, m := range fencedBlock.FindAllStringSubmatch(string(doc), -1) {
		switch {
		case m[1] == "python":
			r.script = m[2]
		case strings.Contains(m[2], "sqlite3 -readonly"):
			r.fromSQLite = m[2]
		case strings.Contains(m[2], "psql"):
			r.fromPostgres = m[2]
		}
	}
	if r.script == "" || r.fromSQLite == "" || r.fromPostgres == "" {
		t.Fatalf("docs/audit.md lacks the python script or a shell recipe: %+v", r)
	}
	return r
}

// runRecipe runs a documented shell command with oldigest.py beside it and returns the last
// line it prints.
func runRecipe(t *testing.T, r docRecipe, command string, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oldigest.py"), []byte(r.script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", "set -o pipefail\n"+command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the documented recipe needs %s, which is not on PATH here", tool)
		}
	}
}

// appendOddEvents adds events whose bytes a careless tool would mangle: JSON with line breaks
// and white space, non-ASCII names, and a stream that sorts differently by bytes than by a
// natural collation.
func appendOddEvents(t *testing.T, store eventstore.Store) {
	t.Helper()
	for _, a := range awkwardEvents() {
		if _, err := store.Append(t.Context(), a.stream, eventstore.Any(), a.event); err != nil {
			t.Fatal(err)
		}
	}
	res, err := store.Append(t.Context(), "Zebra-1", eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Ünusual\ttype.v1", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitForHead(t, store, res.Position)
}

func TestDocumentedRecipeRecomputesTheDigest(t *testing.T) {
	recipe := readDocRecipe(t)
	t.Run("sqlite", func(t *testing.T) {
		requireTools(t, "bash", "python3", "sqlite3")
		path := filepath.Join(t.TempDir(), "events.db")
		store := openSQLiteAt(t, path)
		seedLog(t, store, 120)
		appendOddEvents(t, store)
		d, _, err := audit.TakeDigest(t.Context(), store, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		appendEvents(t, store, 120, 10) // beyond the digest's position: the recipe must leave them out
		if got := runRecipe(t, recipe, recipe.fromSQLite, "DB="+path, "P="+d.Position.String()); got != d.String() {
			t.Errorf("the recipe gives\n%s\norderledger gives\n%s", got, d)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		requireTools(t, "bash", "python3", "psql")
		dsn := pgtest.NewDatabase(t)
		store := openPostgresAt(t, dsn)
		seedLog(t, store, 120)
		appendOddEvents(t, store)
		d, _, err := audit.TakeDigest(t.Context(), store, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		appendEvents(t, store, 120, 10)
		if got := runRecipe(t, recipe, recipe.fromPostgres, "DSN="+dsn, "P="+d.Position.String()); got != d.String() {
			t.Errorf("the recipe gives\n%s\norderledger gives\n%s", got, d)
		}
	})
}
