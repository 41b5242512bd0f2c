package integrations

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/sqlite"
)

// streamFixture is a store, a running Broadcaster and a server answering GET /v1/stream.
type streamFixture struct {
	store eventstore.Store
	b     *Broadcaster
	srv   *httptest.Server
}

func newStreamFixture(t testing.TB, bopts []BroadcasterOption, sopts ...StreamOption) *streamFixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b := NewBroadcaster(store, bopts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	router := mux.NewRouter()
	NewStreamAPI(b, sopts...).Register(router)
	srv := httptest.NewUnstartedServer(router)
	// Small socket buffers, so a client that stops reading fills them after a few events.
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Config.RegisterOnShutdown(b.Stop)
	srv.Start()
	t.Cleanup(func() {
		b.Stop()
		srv.Close()
		cancel()
		<-done
	})
	<-b.ready
	return &streamFixture{store: store, b: b, srv: srv}
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// placeOrders appends OrderPlaced events for orders first..first+n-1, one append each, and
// returns their positions.
func (f *streamFixture) placeOrders(t *testing.T, first, n int) []eventstore.Position {
	t.Helper()
	var out []eventstore.Position
	for i := first; i < first+n; i++ {
		id := fmt.Sprintf("O%d", i)
		typ, data, err := domain.EncodeEvent(domain.OrderPlaced{
			OrderID: id, CustomerID: "C1", Channel: "web", Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "S1", Quantity: 1, UnitPrice: 100}}, Subtotal: 100, Total: 100,
			ShippingAddress: "1 Main St", PlacedAt: time.Unix(1700000000, 0).UTC(),
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.store.Append(t.Context(), domain.OrderStream(id), eventstore.NoStream(),
			eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: eventstore.Metadata{Actor: "clerk-1"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Position)
	}
	return out
}

// sseMessage is one message read off the stream; comment is set for a comment line.
type sseMessage struct {
	id, event, data, comment string
}

// sseReader parses a text/event-stream body.
type sseReader struct {
	body    io.ReadCloser
	scanner *bufio.Scanner
}

func openStream(t *testing.T, url string, header ...string) (*sseReader, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	return &sseReader{body: resp.Body, scanner: s}, resp
}

// next returns the next message or comment, or fails the test when the stream ends or stays
// silent for 10 s.
func (r *sseReader) next(t *testing.T) sseMessage {
	t.Helper()
	got := make(chan sseMessage, 1)
	failed := make(chan error, 1)
	go func() {
		m, err := r.read()
		if err != nil {
			failed <- err
			return
		}
		got <- m
	}()
	select {
	case m := <-got:
		return m
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		r.body.Close()
		t.Fatal("no message within 10 s")
	}
	return sseMessage{}
}

// read returns the next message or comment.
func (r *sseReader) read() (sseMessage, error) {
	var m sseMessage
	for r.scanner.Scan() {
		line := r.scanner.Text()
		switch {
		case line == "":
			if m != (sseMessage{}) {
				return m, nil
			}
		case strings.HasPrefix(line, ":"):
			if m == (sseMessage{}) {
				r.scanner.Scan() // the blank line after it
				return sseMessage{comment: strings.TrimSpace(line[1:])}, nil
			}
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
	return m, fmt.Errorf("stream ended: %v", r.scanner.Err())
}

// nextEvent skips comments and returns the next event message.
func (r *sseReader) nextEvent(t *testing.T) sseMessage {
	t.Helper()
	for {
		if m := r.next(t); m.comment == "" && m.id != "" {
			return m
		}
	}
}

func TestStreamSendsEveryEventInTheContractsFormat(t *testing.T) {
	f := newStreamFixture(t, nil)
	pos := f.placeOrders(t, 1, 3)
	stream, resp := openStream(t, f.srv.URL+"/v1/stream?after=0-0")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	for i, p := range pos {
		m := stream.nextEvent(t)
		if m.id != p.String() || m.event != "OrderPlaced.v1" {
			t.Fatalf("message %d: id %q event %q, want %s OrderPlaced.v1", i, m.id, m.event, p)
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(m.data), &data); err != nil {
			t.Fatalf("data %q: %v", m.data, err)
		}
		want := map[string]any{
			"position": p.String(), "stream": fmt.Sprintf("order-O%d", i+1), "version": 0.0,
			"type": "OrderPlaced.v1", "actor": "clerk-1",
		}
		for k, v := range want {
			if data[k] != v {
				t.Errorf("message %d: %s = %v, want %v", i, k, data[k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(data["recorded_at"])); err != nil {
			t.Errorf("recorded_at %v: %v", data["recorded_at"], err)
		}
		if len(data) != 7 {
			t.Errorf("data has fields %v, want exactly position, stream, version, type, recorded_at, actor, data", data)
		}
		payload, _ := data["data"].(map[string]any)
		if payload["order_id"] != fmt.Sprintf("O%d", i+1) || payload["shipping_address"] != "1 Main St" {
			t.Errorf("message %d: event data %v", i, payload)
		}
	}
	// Live: an event appended now arrives too.
	live := f.placeOrders(t, 4, 1)
	if m := stream.nextEvent(t); m.id != live[0].String() {
		t.Errorf("live event id %q, want %s", m.id, live[0])
	}
}

func TestStreamWithoutAfterStartsAtTheHead(t *testing.T) {
	f := newStreamFixture(t, nil)
	f.placeOrders(t, 1, 2)
	waitKept(t, f.b, 2)
	stream, _ := openStream(t, f.srv.URL+"/v1/stream")
	if m := stream.next(t); m.comment == "" {
		t.Fatalf("first message %+v, want the opening comment", m)
	}
	waitSubscribers(t, f.b, 1)
	p := f.placeOrders(t, 3, 1)
	if m := stream.nextEvent(t); m.id != p[0].String() {
		t.Errorf("first event %q, want the one appended after connecting, %s", m.id, p[0])
	}
}

// TestStreamResumesExactlyAfterLastEventID resumes from positions inside the kept events and
// from before them (read from the store, then live), and checks every event after the
// position arrives once, in order.
func TestStreamResumesExactlyAfterLastEventID(t *testing.T) {
	f := newStreamFixture(t, []BroadcasterOption{WithKeep(5)})
	pos := f.placeOrders(t, 1, 20)
	waitKept(t, f.b, 5)
	for _, from := range []int{0, 3, 14, 17, 19} { // 5 to 9 events are kept: 0 and 3 are read from the store
		t.Run(fmt.Sprintf("after event %d", from+1), func(t *testing.T) {
			stream, _ := openStream(t, f.srv.URL+"/v1/stream?after=1-1", "Last-Event-ID", pos[from].String())
			for _, p := range pos[from+1:] {
				if m := stream.nextEvent(t); m.id != p.String() {
					t.Fatalf("got %s, want %s", m.id, p)
				}
			}
		})
	}
	// A client resuming from far back joins the live feed without a gap: events appended
	// while it catches up arrive after the old ones.
	stream, _ := openStream(t, f.srv.URL+"/v1/stream", "Last-Event-ID", pos[1].String())
	more := f.placeOrders(t, 21, 10)
	for _, p := range append(pos[2:], more...) {
		if m := stream.nextEvent(t); m.id != p.String() {
			t.Fatalf("got %s, want %s", m.id, p)
		}
	}
}

func TestStreamFilters(t *testing.T) {
	f := newStreamFixture(t, nil, WithHeartbeat(50*time.Millisecond))
	orders := f.placeOrders(t, 1, 2)
	typ, data, _ := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", RegisteredAt: time.Now().UTC()})
	cust, err := f.store.Append(t.Context(), "customer-C1", eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		want  []eventstore.Position
	}{
		{"types=CustomerRegistered.v1", []eventstore.Position{cust.Position}},
		{"category=order", orders},
		{"types=OrderPlaced.v1,CustomerRegistered.v1&category=customer", []eventstore.Position{cust.Position}},
		{"types=OrderPlaced.v1,CustomerRegistered.v1", append(orders[:2:2], cust.Position)},
	} {
		t.Run(c.query, func(t *testing.T) {
			stream, _ := openStream(t, f.srv.URL+"/v1/stream?after=0-0&"+c.query)
			var got []string
			for {
				m := stream.next(t)
				if m.comment == "heartbeat" {
					break // every event there is was sent by now
				}
				if m.id != "" {
					got = append(got, m.id)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestStreamRefusesBadParameters(t *testing.T) {
	f := newStreamFixture(t, nil)
	for query, names := range map[string]string{
		"types=OrderPlaced.v9":         "types",
		"types=":                       "types",
		"category=orders":              "category",
		"after=12":                     "after",
		"after=1-1&after=2-2":          "after",
		"limit=5":                      "limit",
		"types=OrderPlaced.v1,Nope.v1": "types",
	} {
		resp, err := http.Get(f.srv.URL + "/v1/stream?" + query)
		if err != nil {
			t.Fatal(err)
		}
		var problem struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&problem)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(problem.Detail, names) {
			t.Errorf("?%s: %d %q, want 400 naming %s", query, resp.StatusCode, problem.Detail, names)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/stream", nil)
	req.Header.Set("Last-Event-ID", "yesterday")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Last-Event-ID: yesterday: %d, want 400", resp.StatusCode)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	f := newStreamFixture(t, nil, WithHeartbeat(50*time.Millisecond))
	stream, _ := openStream(t, f.srv.URL+"/v1/stream")
	stream.next(t) // the opening comment
	for range 3 {
		if m := stream.next(t); m.comment != "heartbeat" {
			t.Fatalf("got %+v on an idle stream, want a heartbeat comment", m)
		}
	}
}

func TestStreamHidesPersonalDataFromThoseWhoMayNotSeeIt(t *testing.T) {
	f := newStreamFixture(t, nil, WithPersonalData(func(r *http.Request) bool { return r.Header.Get("X-Sees") == "yes" }))
	typ, data, _ := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", Phone: "+1", PaymentPreference: "card", RegisteredAt: time.Now().UTC()})
	if _, err := f.store.Append(t.Context(), "customer-C1", eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data}); err != nil {
		t.Fatal(err)
	}
	f.placeOrders(t, 1, 1)
	decode := func(m sseMessage) map[string]any {
		var msg struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(m.data), &msg); err != nil {
			t.Fatal(err)
		}
		return msg.Data
	}
	hidden, _ := openStream(t, f.srv.URL+"/v1/stream?after=0-0")
	customer, order := decode(hidden.nextEvent(t)), decode(hidden.nextEvent(t))
	for _, field := range []string{"name", "email", "phone"} {
		if v, ok := customer[field]; !ok || v != nil {
			t.Errorf("hidden: customer %s = %v, want null", field, v)
		}
	}
	if customer["customer_id"] != "C1" || customer["payment_preference"] != "card" {
		t.Errorf("hidden: customer %v lost fields that are not personal", customer)
	}
	if v, ok := order["shipping_address"]; !ok || v != nil || order["order_id"] != "O1" {
		t.Errorf("hidden: order %v, want shipping_address null and the rest", order)
	}
	shown, _ := openStream(t, f.srv.URL+"/v1/stream?after=0-0", "X-Sees", "yes")
	if c := decode(shown.nextEvent(t)); c["name"] != "Ada" || c["email"] != "ada@example.com" {
		t.Errorf("shown: customer %v", c)
	}
}

// TestStreamForgetsWhatAnErasureMadeUnreadable: a client resuming from before a customer's
// erasure gets that customer's kept events with their personal fields null, as the log now
// reads, and other customers' events as they were.
func TestStreamForgetsWhatAnErasureMadeUnreadable(t *testing.T) {
	f := newStreamFixture(t, nil)
	appendEvent := func(stream string, e domain.Event) eventstore.Position {
		typ, data, _ := domain.EncodeEvent(e)
		res, err := f.store.Append(t.Context(), stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	at := time.Unix(1700000000, 0).UTC()
	start := appendEvent("customer-C2", domain.CustomerRegistered{CustomerID: "C2", Name: "Bea", Email: "bea@example.com", RegisteredAt: at})
	appendEvent("customer-C1", domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", RegisteredAt: at})
	f.placeOrders(t, 1, 1) // C1's, with an address
	appendEvent("customer-C1", domain.CustomerErased{CustomerID: "C1", ErasedAt: at})
	waitKept(t, f.b, 4)
	stream, _ := openStream(t, f.srv.URL+"/v1/stream", "Last-Event-ID", start.String())
	decode := func(m sseMessage) map[string]any {
		var msg struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(m.data), &msg); err != nil {
			t.Fatal(err)
		}
		return msg.Data
	}
	if c := decode(stream.nextEvent(t)); c["name"] != nil || c["email"] != nil || c["customer_id"] != "C1" {
		t.Errorf("erased customer's registration resumed as %v, want name and email null", c)
	}
	if o := decode(stream.nextEvent(t)); o["shipping_address"] != nil || o["total"] != float64(100) {
		t.Errorf("erased customer's order resumed as %v, want shipping_address null and the rest", o)
	}
	other, _ := openStream(t, f.srv.URL+"/v1/stream?after=0-0")
	if c := decode(other.nextEvent(t)); c["name"] != "Bea" {
		t.Errorf("another customer's registration resumed as %v", c)
	}
}

// TestSlowStreamClientIsCutWithoutDelayingOthers: a client that stops reading fills its
// buffer and is disconnected, while a client that reads gets every event.
func TestSlowStreamClientIsCutWithoutDelayingOthers(t *testing.T) {
	f := newStreamFixture(t, nil)
	// The slow client: a raw connection with a small receive buffer that reads nothing.
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
	fast, _ := openStream(t, f.srv.URL+"/v1/stream")
	fast.next(t)
	waitSubscribers(t, f.b, 2)
	received := receiveIDs(fast, 100000)

	// Enough events, big enough, to fill the slow client's socket buffers and its buffer of
	// DefaultBuffer events. Each append waits until the fast client has the one before: it
	// keeps up while the slow one is stuck.
	const n, per = 3000, 50
	var ids []string
	for chunk := 0; chunk < n; chunk += per {
		for len(ids) < chunk {
			select {
			case id := <-received:
				ids = append(ids, id)
			case <-time.After(10 * time.Second):
				t.Fatalf("fast client: got %d events of %d (stats %+v)", len(ids), chunk, f.b.Stats())
			}
		}
		var batch []eventstore.EventData
		for i := range per {
			data, _ := json.Marshal(map[string]string{"order_id": fmt.Sprint(chunk + i), "note": strings.Repeat("x", 2000)})
			batch = append(batch, eventstore.EventData{ID: uuid.New(), Type: "OrderNoted.v1", Data: data})
		}
		if _, err := f.store.Append(t.Context(), fmt.Sprintf("order-N%d", chunk), eventstore.NoStream(), batch...); err != nil {
			t.Fatal(err)
		}
	}
	events, err := f.store.ReadAll(t.Context(), eventstore.Position{}, n)
	if err != nil {
		t.Fatal(err)
	}
	for len(ids) < n {
		select {
		case id := <-received:
			ids = append(ids, id)
		case <-time.After(10 * time.Second):
			t.Fatalf("fast client: got %d events of %d (stats %+v)", len(ids), n, f.b.Stats())
		}
	}
	for i, id := range ids {
		if id != events[i].Position.String() {
			t.Fatalf("fast client: event %d is %s, want %s", i, id, events[i].Position)
		}
	}
	if s := f.b.Stats(); s.DroppedSlow != 1 || s.Subscribers != 1 {
		t.Errorf("after the burst: %+v, want the slow client dropped and the fast one subscribed", s)
	}
	// The slow client's connection ends: reading it now reaches the end well before n events.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the slow client's connection was not closed: %v", err)
	}
	if got := strings.Count(string(body), "\nevent: "); got >= n {
		t.Errorf("the slow client got all %d events", got)
	}
}

// TestFastStreamClientIsNotCutForTheServersWaiting: a subscriber writes at most once per
// coalescing interval, but when events come faster than its buffer holds in one interval it
// writes as soon as the buffer is half full. A client reading everything it is sent is never
// cut for the server's own waiting. (Before, at 16,000 events a second, the 100 ms interval
// outlasted the 1,024-event buffer and cut such clients.)
func TestFastStreamClientIsNotCutForTheServersWaiting(t *testing.T) {
	const buffer, chunk, chunks = 64, 10, 30
	f := newStreamFixture(t, []BroadcasterOption{WithBuffer(buffer), WithCoalesce(time.Hour)})
	client, _ := openStream(t, f.srv.URL+"/v1/stream")
	client.next(t) // the opening comment
	waitSubscribers(t, f.b, 1)
	received := receiveIDs(client, chunk*chunks)
	for c := range chunks {
		var batch []eventstore.EventData
		for i := range chunk {
			data, _ := json.Marshal(map[string]string{"order_id": fmt.Sprint(c*chunk + i)})
			batch = append(batch, eventstore.EventData{ID: uuid.New(), Type: "OrderNoted.v1", Data: data})
		}
		if _, err := f.store.Append(t.Context(), fmt.Sprintf("order-F%d", c), eventstore.NoStream(), batch...); err != nil {
			t.Fatal(err)
		}
		waitKept(t, f.b, (c+1)*chunk)
		// Each chunk is published whole before the next: the subscriber must have taken what
		// waited before its buffer could overflow, long before the hour is out.
		deadline := time.Now().Add(10 * time.Second)
		for pendingEvents(f.b) >= buffer/2+chunk {
			if time.Now().After(deadline) {
				t.Fatalf("after chunk %d: %d events wait for the client (stats %+v)", c, pendingEvents(f.b), f.b.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	events, err := f.store.ReadAll(t.Context(), eventstore.Position{}, chunk*chunks)
	if err != nil {
		t.Fatal(err)
	}
	// What is left below half the buffer waits for the interval; the rest has been sent.
	for i := 0; i < chunk*chunks-buffer/2; i++ {
		select {
		case id := <-received:
			if id != events[i].Position.String() {
				t.Fatalf("event %d is %s, want %s", i, id, events[i].Position)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d events of %d (stats %+v)", i, chunk*chunks, f.b.Stats())
		}
	}
	if s := f.b.Stats(); s.DroppedSlow != 0 || s.Subscribers != 1 {
		t.Errorf("%+v, want the client subscribed and none dropped", s)
	}
}

// receiveIDs reads r in a goroutine of its own until it ends, and passes on the id of every
// message; up to buffered ids wait to be taken.
func receiveIDs(r *sseReader, buffered int) <-chan string {
	ids := make(chan string, buffered)
	go func() {
		for {
			m, err := r.read()
			if err != nil {
				return
			}
			if m.id != "" {
				ids <- m.id
			}
		}
	}()
	return ids
}

// pendingEvents is how many events wait in the subscriptions' buffers.
func pendingEvents(b *Broadcaster) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for s := range b.subs {
		n += len(s.events)
	}
	return n
}

func waitKept(t testing.TB, b *Broadcaster, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().KeptEvents < n {
		if time.Now().After(deadline) {
			t.Fatalf("the broadcaster keeps %d events, want %d", b.Stats().KeptEvents, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitSubscribers(t testing.TB, b *Broadcaster, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Subscribers != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", b.Stats().Subscribers, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
