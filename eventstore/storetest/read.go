package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// testReadYourWrite checks that once Append returns, ReadStream, ReadAll and Head already show
// the events with every field as appended.
func testReadYourWrite(t *testing.T, h Harness) {
	store := h.NewStore(t)
	cet := time.FixedZone("CET", 3600)
	given := time.Date(2024, 2, 29, 13, 14, 15, 123456789, cet)
	meta := eventstore.Metadata{CorrelationID: "corr-1", CausationID: "cause-1", IdempotencyKey: "key-1", Actor: "clerk@example.com"}

	type appended struct {
		stream    string
		events    []eventstore.EventData
		result    eventstore.AppendResult
		notBefore time.Time
		notAfter  time.Time
	}
	plan := []struct {
		stream string
		events []eventstore.EventData
	}{
		{"order-1", []eventstore.EventData{
			{ID: uuid.New(), Type: "OrderPlaced.v1", Data: []byte(`{ "lines" : [ {"sku":"A","qty":2} ],"total":1999 }`), Metadata: meta},
			{ID: uuid.New(), Type: "OrderConfirmed.v1", Data: []byte(`{}`), RecordedAt: given},
		}},
		{"stock-A", []eventstore.EventData{{ID: uuid.New(), Type: "StockReserved.v1", Data: []byte(`{"qty":2}`), Metadata: eventstore.Metadata{Actor: "allocator"}}}},
		{"order-1", []eventstore.EventData{{ID: uuid.New(), Type: "OrderShipped.v1", Data: []byte(`[1, 2.50, "x", null, true]`)}}},
	}
	var done []appended
	versions := map[string]uint64{}
	appendedSoFar := 0
	for _, p := range plan {
		notBefore := time.Now().Add(-clockSlack)
		res := mustAppend(t, store, p.stream, eventstore.Any(), p.events...)
		a := appended{stream: p.stream, events: p.events, result: res, notBefore: notBefore, notAfter: time.Now().Add(clockSlack)}
		done = append(done, a)

		// Visible at once, before anything else happens.
		got := readStream(t, store, p.stream)
		if len(got) < len(p.events) {
			t.Fatalf("right after Append, ReadStream %q has %d events, want at least %d", p.stream, len(got), len(p.events))
		}
		tail := got[len(got)-len(p.events):]
		for i, e := range tail {
			if err := checkStored(e, p.events[i], p.stream, versions[p.stream]+uint64(i), a.notBefore, a.notAfter); err != nil {
				t.Errorf("ReadStream %q right after Append, event %d: %v", p.stream, i, err)
			}
		}
		if last := tail[len(tail)-1]; last.Position != res.Position || last.Version != res.Version {
			t.Errorf("last event %s, AppendResult %+v", describe(last), res)
		}
		headReaches(t, store, res.Position, "right after Append")
		appendedSoFar += len(p.events)
		all := readAll(t, store, appendedSoFar)
		if len(all) == 0 || all[len(all)-1].ID != p.events[len(p.events)-1].ID {
			t.Fatalf("right after Append, ReadAll does not end with the appended events")
		}
		versions[p.stream] = res.Version + 1
	}

	all := readAll(t, store, appendedSoFar)
	var want []eventstore.EventData
	var windows []appended
	for _, a := range done {
		want = append(want, a.events...)
		for range a.events {
			windows = append(windows, a)
		}
	}
	if !sameIDs(ids(all), dataIDs(want)) {
		t.Fatalf("ReadAll returns %v, want the appended events in append order %v", ids(all), dataIDs(want))
	}
	if err := checkGlobalOrder(all); err != nil {
		t.Error(err)
	}
	byStream := map[string][]eventstore.Event{}
	for _, s := range []string{"order-1", "stock-A"} {
		byStream[s] = readStream(t, store, s)
	}
	next := map[string]int{}
	for i, e := range all {
		w := windows[i]
		version := uint64(next[w.stream])
		if err := checkStored(e, want[i], w.stream, version, w.notBefore, w.notAfter); err != nil {
			t.Errorf("ReadAll event %d: %v", i, err)
		}
		if version >= uint64(len(byStream[w.stream])) {
			t.Fatalf("ReadStream %q has %d events, ReadAll has more", w.stream, len(byStream[w.stream]))
		}
		if err := sameEvent(byStream[w.stream][version], e); err != nil {
			t.Error(err)
		}
		next[w.stream]++
	}
	for _, s := range []string{"order-1", "stock-A"} {
		checkChain(t, byStream[s])
	}
}

// testStreamVersions checks gapless versions from 0 and ReadStream's from and limit.
func testStreamVersions(t *testing.T, h Harness) {
	store := h.NewStore(t)
	const stream = "order-7"
	for _, n := range []int{1, 3, 2, 4} {
		mustAppend(t, store, stream, eventstore.Any(), NewEvents(n, "Counted.v1")...)
		mustAppend(t, store, "order-8", eventstore.Any(), NewEvent("Interleaved.v1", `{}`))
	}
	all := readStream(t, store, stream)
	if len(all) != 10 {
		t.Fatalf("stream has %d events, want 10", len(all))
	}
	for i, e := range all {
		if e.Version != uint64(i) || e.Stream != stream {
			t.Fatalf("event %d is %s, want %s/%d", i, describe(e), stream, i)
		}
	}
	cases := []struct {
		from  uint64
		limit int
		want  []uint64
	}{
		{0, 1, []uint64{0}},
		{4, 3, []uint64{4, 5, 6}},
		{8, 10, []uint64{8, 9}},
		{9, 1, []uint64{9}},
		{10, 5, nil},
		{1000, 5, nil},
	}
	for _, c := range cases {
		got, err := store.ReadStream(t.Context(), stream, c.from, c.limit)
		if err != nil {
			t.Fatalf("ReadStream from %d limit %d: %v", c.from, c.limit, err)
		}
		var versions []uint64
		for i, e := range got {
			versions = append(versions, e.Version)
			if e.Version >= uint64(len(all)) {
				continue // reported below as an unexpected version
			}
			if err := sameEvent(e, all[e.Version]); err != nil {
				t.Errorf("ReadStream from %d, event %d: %v", c.from, i, err)
			}
		}
		if fmt.Sprint(versions) != fmt.Sprint(c.want) {
			t.Errorf("ReadStream from %d limit %d: versions %v, want %v", c.from, c.limit, versions, c.want)
		}
	}
	if got := readStream(t, store, "order-missing"); len(got) != 0 {
		t.Errorf("a stream never written reads as %d events, want none", len(got))
	}
}

// testGlobalOrder pages through a log of interleaved streams and checks that the global order
// agrees with each stream's order and that paging returns every event once.
func testGlobalOrder(t *testing.T, h Harness) {
	store := h.NewStore(t)
	rng := rand.New(rand.NewPCG(7, 11))
	var appended []uuid.UUID
	var last eventstore.Position
	for len(appended) < 60 {
		stream := fmt.Sprintf("order-%d", rng.IntN(5))
		batch := NewEvents(1+rng.IntN(4), "Ordered.v1")
		last = mustAppend(t, store, stream, eventstore.Any(), batch...).Position
		appended = append(appended, dataIDs(batch)...)
	}

	whole := readFrom(t, store, eventstore.Position{}, 10*len(appended), len(appended))
	if !sameIDs(ids(whole), appended) {
		t.Fatalf("ReadAll returns %d events in another order than they were appended", len(whole))
	}
	if err := checkGlobalOrder(whole); err != nil {
		t.Fatal(err)
	}

	var paged []eventstore.Event
	var from eventstore.Position
	deadline := time.Now().Add(settleTimeout)
	for pages := 0; ; pages++ {
		if pages > len(appended) {
			t.Fatalf("ReadAll paging does not end")
		}
		page, err := store.ReadAll(t.Context(), from, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("ReadAll with limit 7 returned %d events", len(page))
		}
		if len(page) == 0 {
			if from == last || time.Now().After(deadline) {
				break
			}
			// A page that trails the last append (see settleTimeout): ask again, as a
			// projector would.
			pages--
			time.Sleep(5 * time.Millisecond)
			continue
		}
		paged = append(paged, page...)
		from = page[len(page)-1].Position
	}
	if len(paged) != len(whole) {
		t.Fatalf("paging with limit 7 returned %d events, one read %d", len(paged), len(whole))
	}
	for i := range paged {
		if err := sameEvent(paged[i], whole[i]); err != nil {
			t.Fatalf("paged event %d: %v", i, err)
		}
	}

	headReaches(t, store, whole[len(whole)-1].Position, "after the appends")
	if rest, err := store.ReadAll(t.Context(), whole[len(whole)-1].Position, 10); err != nil || len(rest) != 0 {
		t.Errorf("ReadAll after the last event: %d events, err %v; want none", len(rest), err)
	}
	mid := len(whole) / 2
	rest := readFrom(t, store, whole[mid].Position, pageSize, len(whole)-mid-1)
	if !sameIDs(ids(rest), ids(whole[mid+1:])) {
		t.Errorf("ReadAll from the middle returns %d events, want the %d after it", len(rest), len(whole)-mid-1)
	}
}

// testLargeAndUnicode round-trips an event as large as one append may be and non-ASCII stream,
// type, data and metadata byte for byte; an event one byte larger is refused and stores nothing.
func testLargeAndUnicode(t *testing.T, h Harness) {
	store := h.NewStore(t)
	large := eventOfSize(t, "Attachment.v1", eventstore.MaxAppendSize)
	big := large.Data
	tooLarge := eventOfSize(t, "Attachment.v1", eventstore.MaxAppendSize+1)
	if _, err := store.Append(t.Context(), "attachment-1", eventstore.NoStream(), tooLarge); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("an event one byte over MaxAppendSize: err %v, want ErrInvalidEvent", err)
	}

	stream := "Bestellung-Müller-🧾-注文"
	unicode := eventstore.EventData{
		ID:       uuid.New(),
		Type:     "Bestätigt.v1 ✅ 注文済み",
		Data:     []byte(`{"kunde": "Jürgen Müller","note":"🚚 配送 \u00fc\ud83d\ude00","empty":"" ,"nested":{"ß":["€",1e3]}}`),
		Metadata: eventstore.Metadata{Actor: "Zoë 🐙", CorrelationID: "関連-1"},
	}
	notBefore := time.Now().Add(-clockSlack)
	mustAppend(t, store, "attachment-1", eventstore.NoStream(), large)
	mustAppend(t, store, stream, eventstore.NoStream(), unicode)
	notAfter := time.Now().Add(clockSlack)

	for _, c := range []struct {
		stream string
		event  eventstore.EventData
	}{{"attachment-1", large}, {stream, unicode}} {
		got := readStream(t, store, c.stream)
		if len(got) != 1 {
			t.Fatalf("ReadStream %q: %d events, want 1", c.stream, len(got))
		}
		if err := checkStored(got[0], c.event, c.stream, 0, notBefore, notAfter); err != nil {
			t.Errorf("ReadStream %q: %v", c.stream, err)
		}
		checkChain(t, got)
	}
	all := readAll(t, store, 2)
	if len(all) != 2 || !bytes.Equal(all[0].Data, big) || all[1].Stream != stream || all[1].Type != unicode.Type ||
		!bytes.Equal(all[1].Data, unicode.Data) || all[1].Metadata != unicode.Metadata {
		t.Errorf("ReadAll does not return both events byte for byte")
	}
}

// testHashChain recomputes every stream's chain from version 0.
func testHashChain(t *testing.T, h Harness) {
	store := h.NewStore(t)
	given := time.Date(2023, 12, 31, 23, 59, 59, 999999999, time.UTC)
	for i := range 12 {
		e := NewEvent("Chained.v1", fmt.Sprintf(`{"i":%d}`, i))
		if i%3 == 0 {
			e.RecordedAt = given
			e.Metadata = eventstore.Metadata{CausationID: fmt.Sprint(i)}
		}
		mustAppend(t, store, fmt.Sprintf("chain-%d", i%3), eventstore.Any(), e, NewEvent("Chained.v1", `{}`))
	}
	for s := range 3 {
		events := readStream(t, store, fmt.Sprintf("chain-%d", s))
		if len(events) != 8 {
			t.Fatalf("chain-%d has %d events, want 8", s, len(events))
		}
		checkChain(t, events)
	}
}

// checkChain recomputes the hash chain of a whole stream read from version 0.
func checkChain(t *testing.T, events []eventstore.Event) {
	t.Helper()
	var prev eventstore.Hash
	for _, e := range events {
		if want := e.Recompute(prev); e.Hash != want {
			t.Errorf("%s: stored hash %v, recomputed from the previous hash %v", describe(e), e.Hash, want)
		}
		if e.Version > 0 && e.Recompute(eventstore.Hash{}) == e.Hash {
			t.Errorf("%s: hash does not depend on the previous event's hash", describe(e))
		}
		prev = e.Hash
	}
}

// eventOfSize returns an event of type eventType with a fresh ID whose AppendSize is size: its
// data is a JSON object holding one string.
func eventOfSize(t *testing.T, eventType string, size int) eventstore.EventData {
	t.Helper()
	const prefix, suffix = `{"blob":"`, `"}`
	e := eventstore.EventData{ID: uuid.New(), Type: eventType, Data: []byte(prefix + suffix)}
	pad := size - eventstore.AppendSize(e)
	if pad < 0 {
		t.Fatalf("no %s event is as small as %d bytes", eventType, size)
	}
	e.Data = []byte(prefix + strings.Repeat("0123456789abcdef", pad/16+1)[:pad] + suffix)
	if got := eventstore.AppendSize(e); got != size {
		t.Fatalf("built an event of %d bytes, want %d", got, size)
	}
	return e
}
