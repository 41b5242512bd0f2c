package readapi_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/projections/projectionstest"
	"github.com/orderledger/orderledger/readapi"
)

// asOfStep is a change in a document's history: at `at` (and not a microsecond before) the
// document takes the values of patch.
type asOfStep struct {
	at    time.Time
	patch string
}

// TestAsOf walks ?as_of= through every change of the scripted history, each event recorded at
// the time it carries: just before each change the whole document is as it was, at the change
// it is as it became, before the first it is a 404, and at the end it is the projection's
// document. Order-1 is placed, confirmed, invoiced, paid, shipped, delivered, returned,
// credited and refunded; order-2 waits for a backorder; order-3 is cancelled; both SKUs see
// receipts, a policy, reservations, a purchase order, shipments, a release and a restock.
func TestAsOf(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		head := projectionstest.AppendAsRecorded(t, env.Store, projectionstest.ScriptedHistory())
		runner := projectionstest.StartRunner(t, env)
		router := mux.NewRouter()
		// A ?after= wait long enough for the runner to reach the head on a loaded machine, and
		// longer than an answer that does not wait takes: as_of must not wait at all.
		readapi.New(env.Read, env.Store, runner, readapi.WithAfterTimeout(5*time.Second)).Register(router)
		s := &server{env: env, runner: runner, router: router, head: head}
		day := projectionstest.Day

		histories := []struct {
			path, notFound string
			steps          []asOfStep
			end            string
		}{
			{"/v1/orders/order-1", "order_not_found", []asOfStep{
				{day(1, 10, 0), `{"order_id":"order-1","customer_id":"alice","channel":"web","currency":"USD","status":"confirmed",
					"payment_status":"unpaid","fulfillment_status":"unfulfilled",
					"lines":[{"sku":"SKU-A","quantity":3,"unit_price":1000,"reserved":3,"backordered":0},{"sku":"SKU-B","quantity":1,"unit_price":500,"reserved":1,"backordered":0}],
					"subtotal":3500,"tax":350,"total":3850,"paid":0,"refunded":0,"outstanding":3850,"invoice_number":null,"credit_notes":[],
					"carrier":null,"tracking_number":null,"placed_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-01T10:00:00Z"}`},
				{day(1, 10, 1), `{"invoice_number":"INV-1","updated_at":"2025-03-01T10:01:00Z"}`},
				{day(2, 9, 0), `{"paid":3850,"payment_status":"paid","outstanding":0,"updated_at":"2025-03-02T09:00:00Z"}`},
				{day(3, 9, 0), `{"status":"shipped","fulfillment_status":"shipped","carrier":"DHL","tracking_number":"TRK-1","updated_at":"2025-03-03T09:00:00Z"}`},
				{day(3, 18, 0), `{"status":"completed","fulfillment_status":"delivered","updated_at":"2025-03-03T18:00:00Z"}`},
				{day(4, 15, 0), `{"fulfillment_status":"partially_returned","updated_at":"2025-03-04T15:00:00Z"}`},
				{day(4, 15, 1), `{"credit_notes":[{"credit_note_number":"CN-2","reason":"return","return_id":"ret-1","net":1000,"tax":100,"total":1100,"issued_at":"2025-03-04T15:01:00Z"}],
					"outstanding":-1100,"updated_at":"2025-03-04T15:01:00Z"}`},
				{day(4, 15, 2), `{"refunded":1100,"payment_status":"partially_refunded","outstanding":0,"updated_at":"2025-03-04T15:02:00Z"}`},
			}, order1},
			{"/v1/orders/order-2", "order_not_found", []asOfStep{
				{day(2, 11, 0), `{"order_id":"order-2","customer_id":"bob","channel":"phone","currency":"USD","status":"backordered",
					"payment_status":"unpaid","fulfillment_status":"unfulfilled",
					"lines":[{"sku":"SKU-A","quantity":10,"unit_price":200,"reserved":7,"backordered":3}],
					"subtotal":2000,"tax":0,"total":2000,"paid":0,"refunded":0,"outstanding":2000,"invoice_number":null,"credit_notes":[],
					"carrier":null,"tracking_number":null,"placed_at":"2025-03-02T11:00:00Z","updated_at":"2025-03-02T11:00:00Z"}`},
				{day(4, 10, 0), `{"status":"confirmed","lines":[{"sku":"SKU-A","quantity":10,"unit_price":200,"reserved":10,"backordered":0}],"updated_at":"2025-03-04T10:00:00Z"}`},
				{day(4, 10, 1), `{"invoice_number":"INV-3","updated_at":"2025-03-04T10:01:00Z"}`},
				{day(5, 12, 0), `{"paid":500,"payment_status":"partially_paid","outstanding":1500,"updated_at":"2025-03-05T12:00:00Z"}`},
			}, order2},
			{"/v1/orders/order-3", "order_not_found", []asOfStep{
				{day(3, 14, 0), `{"order_id":"order-3","customer_id":"alice","channel":"store","currency":"EUR","status":"confirmed",
					"payment_status":"unpaid","fulfillment_status":"unfulfilled",
					"lines":[{"sku":"SKU-B","quantity":1,"unit_price":700,"reserved":1,"backordered":0}],
					"subtotal":700,"tax":140,"total":840,"paid":0,"refunded":0,"outstanding":840,"invoice_number":null,"credit_notes":[],
					"carrier":null,"tracking_number":null,"placed_at":"2025-03-03T14:00:00Z","updated_at":"2025-03-03T14:00:00Z"}`},
				{day(3, 14, 1), `{"invoice_number":"INV-2","updated_at":"2025-03-03T14:01:00Z"}`},
				{day(3, 16, 0), `{"status":"cancelled","lines":[{"sku":"SKU-B","quantity":1,"unit_price":700,"reserved":0,"backordered":0}],"updated_at":"2025-03-03T16:00:00Z"}`},
				{day(3, 16, 1), `{"credit_notes":[{"credit_note_number":"CN-1","reason":"cancellation","return_id":null,"net":700,"tax":140,"total":840,"issued_at":"2025-03-03T16:01:00Z"}],
					"payment_status":"paid","outstanding":0,"updated_at":"2025-03-03T16:01:00Z"}`},
			}, order3},
			{"/v1/inventory/SKU-A", "sku_not_found", []asOfStep{
				{day(1, 9, 10), `{"sku":"SKU-A","on_hand":10,"reserved":0,"available":10,"backordered":0,"incoming":0,
					"reorder_point":null,"reorder_quantity":null,"supplier":null,"low_stock":false}`},
				{day(1, 9, 11), `{"reorder_point":5,"reorder_quantity":20,"supplier":"Acme"}`},
				{day(1, 10, 0), `{"reserved":3,"available":7}`},
				{day(2, 11, 0), `{"reserved":10,"available":0,"backordered":3,"incoming":20,"low_stock":true}`},
				{day(3, 9, 0), `{"on_hand":7,"reserved":7}`},
				{day(4, 10, 0), `{"on_hand":27,"reserved":10,"available":17,"backordered":0,"incoming":0,"low_stock":false}`},
				{day(4, 15, 0), `{"on_hand":28,"available":18}`},
			}, skuA},
			{"/v1/inventory/SKU-B", "sku_not_found", []asOfStep{
				{day(1, 9, 12), `{"sku":"SKU-B","on_hand":2,"reserved":0,"available":2,"backordered":0,"incoming":0,
					"reorder_point":null,"reorder_quantity":null,"supplier":null,"low_stock":false}`},
				{day(1, 9, 13), `{"reorder_point":2,"reorder_quantity":10,"supplier":"Bolt","low_stock":true}`},
				{day(1, 10, 0), `{"reserved":1,"available":1,"incoming":10}`},
				{day(3, 9, 0), `{"on_hand":1,"reserved":0}`},
				{day(3, 14, 0), `{"reserved":1,"available":0}`},
				{day(3, 16, 0), `{"reserved":0,"available":1}`},
			}, skuB},
		}
		for _, h := range histories {
			var before map[string]any
			for i, step := range h.steps {
				target := h.path + "?as_of=" + step.at.Add(-time.Microsecond).Format(time.RFC3339Nano)
				if i == 0 {
					w := s.get(t, target)
					if p := decodeProblem(t, target, w); w.Code != http.StatusNotFound || p.Code != h.notFound || !strings.Contains(p.Detail, "did not exist yet") {
						t.Errorf("GET %s: %d %+v, want 404 %s", target, w.Code, p, h.notFound)
					}
				} else {
					expectDoc(t, s, target, before)
				}
				after := maps.Clone(before)
				if after == nil {
					after = map[string]any{}
				}
				maps.Copy(after, decode(t, step.patch))
				expectDoc(t, s, h.path+"?as_of="+step.at.Format(time.RFC3339), after)
				before = after
			}
			if want := decode(t, h.end); !reflect.DeepEqual(before, want) {
				t.Errorf("%s: the last step gives %v, the projection %v", h.path, before, want)
			}
			// At the end, at an offset, and long after, as_of gives the projection's document.
			for _, at := range []string{"2025-03-05T12:00:00Z", "2025-03-05T13:00:00%2B01:00", "2025-03-05T07:00:00-05:00", "2031-01-01T00:00:00.5Z"} {
				expectDoc(t, s, h.path+"?as_of="+at, s.getJSON(t, h.path).(map[string]any))
			}
		}

		// An offset's "+" is sent as %2B. One left unencoded arrives as a space, which RFC 3339
		// (the date-time format the document declares) does not allow: a 400 that says so.
		expectDoc(t, s, "/v1/inventory/SKU-A?as_of=2025-03-01T10:10:30%2B01:00", decode(t, `{"sku":"SKU-A","on_hand":10,"reserved":0,"available":10,"backordered":0,"incoming":0,
			"reorder_point":null,"reorder_quantity":null,"supplier":null,"low_stock":false}`))
		if w := s.get(t, "/v1/inventory/SKU-A?as_of=2025-03-01T10:10:30+01:00"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "%2B") {
			t.Errorf("as_of with an unencoded +: %d %s, want a 400 saying to send it as %%2B", w.Code, w.Body)
		}
		// as_of reads the event store, so ?after= is checked and not waited for, even for a
		// position the read models have not reached.
		start := time.Now()
		if w := s.get(t, "/v1/orders/order-2?as_of=2025-03-02T12:00:00Z&after=999999999-999999999"); w.Code != http.StatusOK {
			t.Errorf("as_of with an after not reached: %d %s", w.Code, w.Body)
		}
		if waited := time.Since(start); waited >= 2*time.Second {
			t.Errorf("as_of waited %s for ?after=", waited)
		}
	})
}

// TestAsOfBadRequests: a malformed as_of is a 400 naming it, and so is as_of on a route that
// has no time travel.
func TestAsOfBadRequests(t *testing.T) {
	s := newServer(t, projectionstest.OpenSQLite(t), time.Second)
	for _, target := range []string{
		"/v1/orders/order-1?as_of=yesterday",
		"/v1/orders/order-1?as_of=2025-03-02",
		"/v1/orders/order-1?as_of=2025-03-02T10:00:00",
		"/v1/orders/order-1?as_of=",
		"/v1/orders/order-1?as_of=2025-03-02T10:00:00Z&as_of=2025-03-03T10:00:00Z",
		"/v1/inventory/SKU-A?as_of=2025-02-30T10:00:00Z",
		"/v1/inventory/SKU-A?as_of=2025-03-02T10:00:00Z&after=x",
		"/v1/customers/alice?as_of=2025-03-02T10:00:00Z",
		"/v1/orders?as_of=2025-03-02T10:00:00Z",
	} {
		w := s.get(t, target)
		want := "as_of"
		if strings.Contains(target, "after=x") {
			want = "after"
		}
		if p := decodeProblem(t, target, w); w.Code != http.StatusBadRequest || p.Code != "invalid_input" || !strings.Contains(p.Detail, want) {
			t.Errorf("GET %s: %d %+v, want a 400 naming %s", target, w.Code, p, want)
		}
	}
	w := s.get(t, "/v1/orders/order-9?as_of=2030-01-01T00:00:00Z")
	if p := decodeProblem(t, "order-9", w); w.Code != http.StatusNotFound || p.Code != "order_not_found" {
		t.Errorf("an order never placed, as of a time: %d %+v", w.Code, p)
	}
}

// expectDoc compares the whole answer with want.
func expectDoc(t *testing.T, s *server, target string, want map[string]any) {
	t.Helper()
	w := s.get(t, target)
	if w.Code != http.StatusOK {
		t.Errorf("GET %s: %d %s", target, w.Code, w.Body)
		return
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		e, _ := json.Marshal(want)
		t.Errorf("GET %s:\n got %s\nwant %s", target, g, e)
	}
}

func decode(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return m
}
