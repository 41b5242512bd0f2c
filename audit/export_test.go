package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
)

// awkwardEvents are events whose bytes a careless export would change: data with spaces, line
// breaks, leading white space or HTML characters, names and metadata that need escaping.
func awkwardEvents() []struct {
	stream string
	event  eventstore.EventData
} {
	at := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC) // kept to the microsecond
	mk := func(stream, data string, m eventstore.Metadata) struct {
		stream string
		event  eventstore.EventData
	} {
		return struct {
			stream string
			event  eventstore.EventData
		}{stream, eventstore.EventData{ID: uuid.New(), Type: "Awkward.v1", Data: []byte(data), Metadata: m, RecordedAt: at}}
	}
	return []struct {
		stream string
		event  eventstore.EventData
	}{
		mk("order-awkward", `{"a": 1, "b" : [1, 2.50, 1e3]}`, eventstore.Metadata{}),
		mk("order-awkward", "{\n  \"pretty\": true\n}", eventstore.Metadata{Actor: `a "quoted" <actor> & co`}),
		mk("order-awkward", "  \t[1,2]\t ", eventstore.Metadata{CorrelationID: "c", CausationID: "d", IdempotencyKey: "k"}),
		mk("order-ünïcode \"quoted\"", `"just a string \u2028 <&>"`, eventstore.Metadata{Actor: "José"}),
		mk("order-ünïcode \"quoted\"", `null`, eventstore.Metadata{}),
	}
}

func TestExportThenImportKeepsEveryHash(t *testing.T) {
	for _, pair := range [][2]backend{{backends[0], backends[1]}, {backends[1], backends[0]}} {
		t.Run(pair[0].name+" to "+pair[1].name, func(t *testing.T) {
			t.Parallel()
			source, _ := pair[0].open(t)
			appendEvents(t, source, 0, 250)
			for _, a := range awkwardEvents() {
				if _, err := source.Append(t.Context(), a.stream, eventstore.Any(), a.event); err != nil {
					t.Fatal(err)
				}
			}
			appendEvents(t, source, 250, 50)
			log := readLog(t, source)

			var out bytes.Buffer
			var progress []uint64
			res, err := audit.Export(t.Context(), source, &out, audit.ExportOptions{
				BatchSize: 64, Progress: func(done uint64) { progress = append(progress, done) },
			})
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if res.Events != uint64(len(log)) || len(lines) != len(log) || res.Position != log[len(log)-1].Position {
				t.Fatalf("export: %+v and %d lines, want %d events up to %s", res, len(lines), len(log), log[len(log)-1].Position)
			}
			if progress[len(progress)-1] != res.Events {
				t.Errorf("progress %v does not end at %d", progress, res.Events)
			}
			checkLines(t, lines, log)

			target, _ := pair[1].open(t)
			imported, err := audit.Import(t.Context(), target, &out, audit.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if imported.Events != uint64(len(log)) {
				t.Errorf("imported %d events, want %d", imported.Events, len(log))
			}
			copied := readLog(t, target)
			if len(copied) != len(log) {
				t.Fatalf("target holds %d events, want %d", len(copied), len(log))
			}
			for i, want := range log {
				got := copied[i]
				if got.ID != want.ID || got.Stream != want.Stream || got.Version != want.Version || got.Type != want.Type ||
					!bytes.Equal(got.Data, want.Data) || got.Metadata != want.Metadata || !got.RecordedAt.Equal(want.RecordedAt) || got.Hash != want.Hash {
					t.Fatalf("event %d:\n got %+v\nwant %+v", i, got, want)
				}
			}
			sourceDigest, _, err := audit.TakeDigest(t.Context(), source, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			targetDigest, _, err := audit.TakeDigest(t.Context(), target, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sourceDigest.Root != targetDigest.Root || sourceDigest.Events != targetDigest.Events {
				t.Errorf("digests differ: source %s, target %s", sourceDigest, targetDigest)
			}
		})
	}
}

// checkLines checks that each export line is a JSON object describing log[i], in order.
func checkLines(t *testing.T, lines []string, log []eventstore.Event) {
	t.Helper()
	for i, line := range lines {
		var x struct {
			ID         uuid.UUID           `json:"id"`
			Stream     string              `json:"stream"`
			Version    uint64              `json:"version"`
			Type       string              `json:"type"`
			Data       json.RawMessage     `json:"data"`
			DataBase64 []byte              `json:"data_base64"`
			Metadata   eventstore.Metadata `json:"metadata"`
			RecordedAt string              `json:"recorded_at"`
			Position   eventstore.Position `json:"position"`
			Hash       eventstore.Hash     `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		e := log[i]
		data := []byte(x.Data)
		if x.DataBase64 != nil {
			data = x.DataBase64
		}
		if x.ID != e.ID || x.Stream != e.Stream || x.Version != e.Version || x.Type != e.Type || !bytes.Equal(data, e.Data) ||
			x.Metadata != e.Metadata || x.Position != e.Position || x.Hash != e.Hash ||
			x.RecordedAt != e.RecordedAt.Format("2006-01-02T15:04:05.000000Z") {
			t.Fatalf("line %d %q does not match event %+v", i+1, line, e)
		}
	}
}

func TestExportFromAPosition(t *testing.T) {
	store, _ := openSQLite(t)
	log := seedLog(t, store, 100)
	var out bytes.Buffer
	res, err := audit.Export(t.Context(), store, &out, audit.ExportOptions{From: log[59].Position})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if res.Events != 40 || len(lines) != 40 {
		t.Fatalf("export after the 60th event: %+v, %d lines, want 40", res, len(lines))
	}
	checkLines(t, lines, log[60:])

	out.Reset()
	res, err = audit.Export(t.Context(), store, &out, audit.ExportOptions{From: res.Position})
	if err != nil || res.Events != 0 || out.Len() != 0 || res.Position != log[99].Position {
		t.Errorf("export from the head: %+v, %q, %v", res, out.String(), err)
	}
}

func TestImportRefusesANonEmptyStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		source, _ := b.open(t)
		seedLog(t, source, 20)
		var out bytes.Buffer
		if _, err := audit.Export(t.Context(), source, &out, audit.ExportOptions{}); err != nil {
			t.Fatal(err)
		}
		target, _ := b.open(t)
		appendEvents(t, target, 0, 1)
		res, err := audit.Import(t.Context(), target, &out, audit.ImportOptions{})
		if !errors.Is(err, audit.ErrNotEmpty) || res.Events != 0 {
			t.Fatalf("import into a non-empty store: %+v, %v", res, err)
		}
		if log := readLog(t, target); len(log) != 1 {
			t.Errorf("the target now holds %d events, want its 1", len(log))
		}
	})
}

func TestImportRefusesAnAlteredExport(t *testing.T) {
	source, _ := openSQLite(t)
	log := seedLog(t, source, 30)
	var out bytes.Buffer
	if _, err := audit.Export(t.Context(), source, &out, audit.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")

	cases := []struct {
		name    string
		alter   func(lines []string)
		wantErr string
	}{
		{"data changed, hash kept", func(l []string) {
			l[11] = strings.Replace(l[11], `"n":11`, `"n":12`, 1)
		}, fmt.Sprintf("line 12: %q version %d: stored hash", log[11].Stream, log[11].Version)},
		{"an event left out", func(l []string) {
			l[0] = "" // version 0 of a stream that has later events
		}, "wrong expected revision"},
		{"not JSON", func(l []string) {
			l[3] = "{not json"
		}, "line 4"},
		{"unknown field", func(l []string) {
			l[0] = strings.Replace(l[0], `{"id"`, `{"extra":1,"id"`, 1)
		}, `line 1: json: unknown field "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			altered := append([]string(nil), lines...)
			tc.alter(altered)
			target, _ := openSQLite(t)
			_, err := audit.Import(t.Context(), target, strings.NewReader(strings.Join(altered, "\n")), audit.ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("import: %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestImportSplitsARunAtTheAppendLimit exports one stream of large events, written one per
// append, whose run together exceeds eventstore.MaxAppendSize: import must cut the run into
// appends the store accepts and keep every hash.
func TestImportSplitsARunAtTheAppendLimit(t *testing.T) {
	source, _ := backends[0].open(t)
	const events = 5
	blob := strings.Repeat("x", eventstore.MaxAppendSize/3)
	for i := range events {
		e := eventstore.EventData{ID: uuid.New(), Type: "Attachment.v1", Data: []byte(fmt.Sprintf(`{"i":%d,"blob":%q}`, i, blob))}
		if _, err := source.Append(t.Context(), "attachment-1", eventstore.Any(), e); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := audit.Export(t.Context(), source, &out, audit.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	target, _ := backends[0].open(t)
	imported, err := audit.Import(t.Context(), target, &out, audit.ImportOptions{})
	if err != nil {
		t.Fatalf("import of a run of %d events of %d bytes each: %v", events, len(blob), err)
	}
	if imported.Events != events {
		t.Errorf("imported %d events, want %d", imported.Events, events)
	}
	want, got := readLog(t, source), readLog(t, target)
	if len(got) != len(want) {
		t.Fatalf("target holds %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Hash != want[i].Hash || got[i].Version != want[i].Version {
			t.Errorf("event %d: %s/%d hash %s, want %s/%d hash %s", i, got[i].Stream, got[i].Version, got[i].Hash, want[i].Stream, want[i].Version, want[i].Hash)
		}
	}
}
