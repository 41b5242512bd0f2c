package audit_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
)

func TestVerifyCleanLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store, _ := b.open(t)
		log := seedLog(t, store, 300)
		var progress []uint64
		report, err := audit.Verify(t.Context(), store, audit.Options{
			BatchSize: 64,
			Progress:  func(done uint64) { progress = append(progress, done) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := audit.Report{OK: true, Streams: uint64(len(seedStreams)), Events: 300, Position: log[len(log)-1].Position}
		if report.OK != want.OK || report.Streams != want.Streams || report.Events != want.Events ||
			report.Position != want.Position || report.FirstFailure != nil {
			t.Fatalf("report %+v, want %+v", report, want)
		}
		if len(progress) < 300/64 || progress[len(progress)-1] != 300 {
			t.Errorf("progress calls %v, want one per batch of 64 ending at 300", progress)
		}

		stream := "order-2"
		one, err := audit.Verify(t.Context(), store, audit.Options{Stream: stream, BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		if !one.OK || one.Streams != 1 || one.Events != lastVersion(log, stream)+1 {
			t.Errorf("verify %s: %+v, want ok with %d events", stream, one, lastVersion(log, stream)+1)
		}
	})
}

func TestVerifyEmptyLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store, _ := b.open(t)
		report, err := audit.Verify(t.Context(), store, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !report.OK || report.Events != 0 || report.Streams != 0 || !report.Position.IsZero() {
			t.Errorf("empty log: %+v", report)
		}
		missing, err := audit.Verify(t.Context(), store, audit.Options{Stream: "order-404"})
		if err != nil {
			t.Fatal(err)
		}
		if !missing.OK || missing.Events != 0 {
			t.Errorf("missing stream: %+v", missing)
		}
	})
}

// tamperCase alters a seeded log of 300 events behind the store's back.
type tamperCase struct {
	name   string
	tamper func(t *testing.T, raw tamperer, log []eventstore.Event)
	// want is the first failure Verify must report, given the log before tampering; nil when
	// the hash chains cannot show the change and only the earlier digest does.
	want func(t *testing.T, log []eventstore.Event) *audit.Failure
	// changedHead, when want is nil, is the stream whose head changed and its version before.
	changedHead func(log []eventstore.Event) (string, uint64)
}

var tamperCases = []tamperCase{
	{
		name: "data altered",
		tamper: func(t *testing.T, raw tamperer, _ []eventstore.Event) {
			raw.exec(t, `UPDATE events SET data = ? WHERE stream = ? AND version = ?`, []byte(`{"n":1,"amount":"999.00"}`), "order-2", 5)
		},
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			return &audit.Failure{Stream: "order-2", Version: 5, Position: eventOf(t, log, "order-2", 5).Position, Kind: audit.KindHashMismatch}
		},
	},
	{
		name: "event deleted in the middle of a stream",
		tamper: func(t *testing.T, raw tamperer, _ []eventstore.Event) {
			raw.exec(t, `DELETE FROM events WHERE stream = ? AND version = ?`, "stock-SKU1", 7)
		},
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			return &audit.Failure{Stream: "stock-SKU1", Version: 8, Position: eventOf(t, log, "stock-SKU1", 8).Position,
				Kind: audit.KindMissingVersion, Reason: "version 7 is missing"}
		},
	},
	{
		name: "first event of a stream deleted",
		tamper: func(t *testing.T, raw tamperer, _ []eventstore.Event) {
			raw.exec(t, `DELETE FROM events WHERE stream = ? AND version = ?`, "payment-7", 0)
		},
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			return &audit.Failure{Stream: "payment-7", Version: 1, Position: eventOf(t, log, "payment-7", 1).Position,
				Kind: audit.KindNotFromZero, Reason: "version 0 is missing"}
		},
	},
	{
		name: "data of two streams' events swapped",
		tamper: func(t *testing.T, raw tamperer, _ []eventstore.Event) {
			swapData(t, raw, "order-1", 3, "customer-42", 2)
		},
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			a, b := eventOf(t, log, "order-1", 3), eventOf(t, log, "customer-42", 2)
			if b.Position.Compare(a.Position) < 0 {
				a = b
			}
			return &audit.Failure{Stream: a.Stream, Version: a.Version, Position: a.Position, Kind: audit.KindHashMismatch}
		},
	},
	{
		name: "data of consecutive events swapped",
		tamper: func(t *testing.T, raw tamperer, _ []eventstore.Event) {
			swapData(t, raw, "order-3", 10, "order-3", 11)
		},
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			return &audit.Failure{Stream: "order-3", Version: 10, Position: eventOf(t, log, "order-3", 10).Position, Kind: audit.KindHashMismatch}
		},
	},
	{
		name: "event rewritten with a recomputed hash",
		tamper: func(t *testing.T, raw tamperer, log []eventstore.Event) {
			rewrite(t, raw, log, "order-1", 4)
		},
		// Its own hash holds now, but the next event chains to the old one.
		want: func(t *testing.T, log []eventstore.Event) *audit.Failure {
			return &audit.Failure{Stream: "order-1", Version: 5, Position: eventOf(t, log, "order-1", 5).Position, Kind: audit.KindHashMismatch}
		},
	},
	{
		name: "last event of a stream deleted",
		tamper: func(t *testing.T, raw tamperer, log []eventstore.Event) {
			raw.exec(t, `DELETE FROM events WHERE stream = ? AND version = ?`, "order-3", lastVersion(log, "order-3"))
		},
		changedHead: func(log []eventstore.Event) (string, uint64) { return "order-3", lastVersion(log, "order-3") },
	},
	{
		name: "last event of a stream rewritten with a recomputed hash",
		tamper: func(t *testing.T, raw tamperer, log []eventstore.Event) {
			rewrite(t, raw, log, "customer-42", lastVersion(log, "customer-42"))
		},
		changedHead: func(log []eventstore.Event) (string, uint64) { return "customer-42", lastVersion(log, "customer-42") },
	},
}

func swapData(t *testing.T, raw tamperer, s1 string, v1 uint64, s2 string, v2 uint64) {
	t.Helper()
	d1, d2 := raw.queryData(t, s1, v1), raw.queryData(t, s2, v2)
	raw.exec(t, `UPDATE events SET data = ? WHERE stream = ? AND version = ?`, d2, s1, v1)
	raw.exec(t, `UPDATE events SET data = ? WHERE stream = ? AND version = ?`, d1, s2, v2)
}

// rewrite replaces an event's data and stores the hash the new data gives, as a forger who
// knows the construction would.
func rewrite(t *testing.T, raw tamperer, log []eventstore.Event, stream string, version uint64) {
	t.Helper()
	var prev eventstore.Hash
	if version > 0 {
		prev = eventOf(t, log, stream, version-1).Hash
	}
	e := eventOf(t, log, stream, version)
	e.Data = []byte(`{"forged":true}`)
	forged := e.Recompute(prev)
	raw.exec(t, `UPDATE events SET data = ?, hash = ? WHERE stream = ? AND version = ?`, e.Data, forged[:], stream, version)
}

func TestVerifyAndDigestCatchTampering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range tamperCases {
			t.Run(tc.name, func(t *testing.T) {
				store, raw := b.open(t)
				log := seedLog(t, store, 300)
				before, beforeHeads, report, err := audit.HeadsAt(t.Context(), store, log[len(log)-1].Position, audit.Options{})
				if err != nil || !report.OK {
					t.Fatalf("digest of the clean log: %+v, %v", report, err)
				}

				tc.tamper(t, raw, log)

				report, err = audit.Verify(t.Context(), store, audit.Options{BatchSize: 50})
				if err != nil {
					t.Fatal(err)
				}
				if tc.want == nil {
					// A chain cannot show that its end is gone or was re-forged: what is left
					// still chains. That is what the digest is for.
					if !report.OK {
						t.Errorf("verify reports %+v; the chains should still hold", report.FirstFailure)
					}
				} else {
					checkFailure(t, report, tc.want(t, log))
				}

				got, gotHeads, report, err := audit.HeadsAt(t.Context(), store, before.Position, audit.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if report.OK && len(before.Diff(got)) == 0 {
					t.Fatalf("the digest taken before (%s) still holds after tampering", before)
				}
				if tc.want == nil {
					if diffs := before.Diff(got); !strings.Contains(strings.Join(diffs, "; "), "root") {
						t.Errorf("digest differences %q, want the root among them", diffs)
					}
					// The heads kept beside the digest name the stream and the version.
					stream, version := tc.changedHead(log)
					diffs := audit.DiffHeads(beforeHeads, gotHeads)
					if len(diffs) != 1 || !strings.Contains(diffs[0], fmt.Sprintf("stream %q: version %d (hash", stream, version)) {
						t.Errorf("heads differences %q, want one naming %s version %d", diffs, stream, version)
					}
				}
			})
		}
	})
}

func checkFailure(t *testing.T, report audit.Report, want *audit.Failure) {
	t.Helper()
	f := report.FirstFailure
	if report.OK || f == nil {
		t.Fatalf("verify passed a tampered log: %+v", report)
	}
	if f.Stream != want.Stream || f.Version != want.Version || f.Position != want.Position || f.Kind != want.Kind {
		t.Errorf("first failure %s (%s), want stream %q version %d at %s (%s)", f, f.Kind, want.Stream, want.Version, want.Position, want.Kind)
	}
	if !strings.Contains(f.Reason, want.Reason) {
		t.Errorf("reason %q, want it to say %q", f.Reason, want.Reason)
	}
	if f.Kind == audit.KindHashMismatch && !strings.Contains(f.Reason, "stored hash") {
		t.Errorf("reason %q should give the stored and recomputed hashes", f.Reason)
	}
}

func TestVerifyOneStreamCatchesTampering(t *testing.T) {
	store, raw := openSQLite(t)
	log := seedLog(t, store, 200)
	raw.exec(t, `UPDATE events SET type = ? WHERE stream = ? AND version = ?`, "Renamed.v9", "order-1", 2)
	report, err := audit.Verify(t.Context(), store, audit.Options{Stream: "order-1", BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkFailure(t, report, &audit.Failure{Stream: "order-1", Version: 2, Position: eventOf(t, log, "order-1", 2).Position, Kind: audit.KindHashMismatch})
	if report.Events != 2 {
		t.Errorf("events checked before the failure: %d, want 2", report.Events)
	}
	// Other streams are untouched.
	other, err := audit.Verify(t.Context(), store, audit.Options{Stream: "order-2"})
	if err != nil || !other.OK {
		t.Errorf("verify order-2: %+v, %v", other, err)
	}
}

func TestVerifyRoute(t *testing.T) {
	store, raw := openSQLite(t)
	log := seedLog(t, store, 60)
	router := mux.NewRouter()
	audit.NewAPI(store).Register(router)

	get := func(target string) (int, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s: %d %q: %v", target, rec.Code, rec.Body, err)
		}
		return rec.Code, body
	}

	status, body := get("/v1/audit/verify")
	if status != http.StatusOK || body["ok"] != true || body["events"] != 60.0 || body["streams"] != float64(len(seedStreams)) {
		t.Errorf("clean log: %d %v", status, body)
	}
	if v, present := body["first_failure"]; !present || v != nil {
		t.Errorf("clean log: first_failure %v (present %v), want null", v, present)
	}

	raw.exec(t, `UPDATE events SET metadata = ? WHERE stream = ? AND version = ?`, []byte(`{"actor":"mallory"}`), "order-3", 1)
	broken := eventOf(t, log, "order-3", 1)
	status, body = get("/v1/audit/verify")
	failure, _ := body["first_failure"].(map[string]any)
	if status != http.StatusOK || body["ok"] != false || failure == nil ||
		failure["stream"] != "order-3" || failure["version"] != 1.0 || failure["position"] != broken.Position.String() ||
		failure["kind"] != string(audit.KindHashMismatch) || !strings.Contains(failure["reason"].(string), "recomputed") {
		t.Errorf("tampered log: %d %v", status, body)
	}

	status, body = get("/v1/audit/verify?stream=order-2")
	if status != http.StatusOK || body["ok"] != true || body["events"] != float64(lastVersion(log, "order-2")+1) {
		t.Errorf("one clean stream: %d %v", status, body)
	}
	status, body = get("/v1/audit/verify?stream=")
	if status != http.StatusBadRequest || body["code"] != "invalid_input" {
		t.Errorf("empty stream name: %d %v", status, body)
	}
}
