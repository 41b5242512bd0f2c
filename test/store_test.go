package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
)

// openStore opens the event store the binary writes to, from the test process, as an auditor
// would, with the master key, so that it reads personal data in plaintext as the server does.
// SQLite and PostgreSQL both allow it while the server runs.
func openStore(t *testing.T, events string) eventstore.Store {
	t.Helper()
	keys, err := privacy.Open(t.Context(), events, masterKeyFile, privacy.CreateIfNew())
	if err != nil {
		t.Fatalf("open the key store of %s: %v", events, err)
	}
	return privacy.Wrap(openRawStore(t, events), keys)
}

// openRawStore opens the event store as it is stored: personal data sealed.
func openRawStore(t *testing.T, events string) eventstore.Store {
	t.Helper()
	store, err := stores.OpenEvents(t.Context(), events)
	if err != nil {
		t.Fatalf("open the event store %s: %v", events, err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

const page = 1000

// readStream returns every event of stream.
func readStream(t testing.TB, store eventstore.Store, stream string) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	for {
		events, err := store.ReadStream(t.Context(), stream, uint64(len(out)), page)
		if err != nil {
			t.Fatalf("read stream %s: %v", stream, err)
		}
		out = append(out, events...)
		if len(events) < page {
			return out
		}
	}
}

// readAllAfter returns every event after position from, in global order.
func readAllAfter(t testing.TB, store eventstore.Store, from eventstore.Position) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	for {
		events, err := store.ReadAll(t.Context(), from, page)
		if err != nil {
			t.Fatalf("read all after %s: %v", from, err)
		}
		out = append(out, events...)
		if len(events) < page {
			return out
		}
		from = events[len(events)-1].Position
	}
}

func head(t testing.TB, store eventstore.Store) eventstore.Position {
	t.Helper()
	p, err := store.Head(t.Context())
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return p
}

// checkLog settles the log, reads it whole and checks what must hold of any log, whatever
// happened to the processes that wrote it: global positions strictly increase, every stream's
// versions run from 0 with no gap and no repeat, and every event's hash recomputes from its
// fields and the previous event's hash. It returns the log by stream, as store reads it.
func checkLog(t testing.TB, srv *server, store eventstore.Store) map[string][]eventstore.Event {
	t.Helper()
	settle(t, srv, store)
	// Hashes cover the stored bytes: the checks read the log as stored, and the log returned
	// is read again through store, which opens the personal fields.
	opened, store := store, privacy.Unwrap(store)
	streams := map[string][]eventstore.Event{}
	var last eventstore.Position
	for i, e := range readAllAfter(t, store, eventstore.Position{}) {
		if i > 0 && e.Position.Compare(last) <= 0 {
			t.Errorf("event %s/%d at position %s does not follow position %s", e.Stream, e.Version, e.Position, last)
		}
		last = e.Position
		prior := streams[e.Stream]
		if e.Version != uint64(len(prior)) {
			t.Errorf("stream %s: version %d follows %d events: a gap or a repeat", e.Stream, e.Version, len(prior))
		}
		var prev eventstore.Hash
		if len(prior) > 0 {
			prev = prior[len(prior)-1].Hash
		}
		if want := e.Recompute(prev); e.Hash != want {
			t.Errorf("stream %s version %d: stored hash %s, recomputed %s", e.Stream, e.Version, e.Hash, want)
		}
		streams[e.Stream] = append(prior, e)
	}
	// A stream read on its own must begin with what the global log holds of it. The
	// automation may append to it meanwhile, but only after the global read's last position.
	for name, events := range streams {
		own := readStream(t, store, name)
		if len(own) < len(events) {
			t.Errorf("stream %s: %d events read on its own, %d in the global log", name, len(own), len(events))
			continue
		}
		for i := range events {
			if own[i].ID != events[i].ID || own[i].Hash != events[i].Hash {
				t.Errorf("stream %s version %d differs between ReadStream and ReadAll", name, i)
			}
		}
		for _, e := range own[len(events):] {
			if e.Position.Compare(last) <= 0 {
				t.Errorf("stream %s version %d at position %s is missing from the global log read up to %s", name, e.Version, e.Position, last)
			}
		}
		streams[name] = readStream(t, opened, name)[:len(events)]
	}
	return streams
}

// eventsOfType returns the events of stream with type typ, decoded into T.
func eventsOfType[T any](t testing.TB, events []eventstore.Event, typ string) []T {
	t.Helper()
	var out []T
	for _, e := range events {
		if e.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("%s/%d (%s): %v", e.Stream, e.Version, e.Type, err)
		}
		out = append(out, v)
	}
	return out
}

// assertNothingAppended fails the test if any event after from carries the correlation ID
// the refused request was sent with: whatever a request appends carries it.
func assertNothingAppended(t testing.TB, srv *server, store eventstore.Store, from eventstore.Position, correlation string) {
	t.Helper()
	settle(t, srv, store)
	for _, e := range readAllAfter(t, store, from) {
		if e.Metadata.CorrelationID == correlation {
			t.Errorf("the refused request appended %s to %s (version %d)", e.Type, e.Stream, e.Version)
		}
	}
}

// settleTimeout bounds how long settle waits for the global log to catch up.
const settleTimeout = 60 * time.Second

// settle returns once ReadAll returns every event committed before it was called. On
// PostgreSQL, ReadAll holds back events while an older transaction is still open (so that a
// late commit is never skipped), so a test that reads the global log right after a write may
// not see it yet. settle makes a write of its own and waits for the head of the log to reach
// it: every transaction that committed before has a lower transaction ID, so it is then
// readable.
func settle(t testing.TB, srv *server, store eventstore.Store) {
	t.Helper()
	answer := srv.expect(t, http.StatusOK, "POST", "/v1/inventory/"+settleSKU+"/receipts", map[string]any{"quantity": 1}, "X-Correlation-ID", "settle")
	marker, err := eventstore.ParsePosition(answer["position"].(string))
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	if !waitFor(settleTimeout, func() bool { return head(t, store).Compare(marker) >= 0 }) {
		t.Fatalf("settle: the head of the log did not reach %s within %s (a transaction is open on the server for that long)", marker, settleTimeout)
	}
}

// settleSKU is the SKU whose receipts settle writes.
const settleSKU = "settle-marker"

// waitFor polls cond until it holds or the deadline passes, and reports whether it held.
func waitFor(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Event data as stored, in the fields these tests check (the stored JSON is what export
// prints, so it is a contract of its own).
type (
	orderLine struct {
		SKU       string `json:"sku"`
		Quantity  int64  `json:"quantity"`
		UnitPrice int64  `json:"unit_price"`
	}
	orderPlaced struct {
		OrderID    string      `json:"order_id"`
		CustomerID string      `json:"customer_id"`
		Channel    string      `json:"channel"`
		Currency   string      `json:"currency"`
		Lines      []orderLine `json:"lines"`
		TaxRateBps int64       `json:"tax_rate_bps"`
		Subtotal   int64       `json:"subtotal"`
		Tax        int64       `json:"tax"`
		Total      int64       `json:"total"`
	}
	paymentReceived struct {
		PaymentID string `json:"payment_id"`
		Amount    int64  `json:"amount"`
		Reference string `json:"reference"`
	}
	stockReceived struct {
		SKU       string `json:"sku"`
		Quantity  int64  `json:"quantity"`
		Reference string `json:"reference"`
	}
)
