package readapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
	"github.com/orderledger/orderledger/readapi"
)

// server is the read API over a scripted history on one backend.
type server struct {
	env    *projectionstest.Env
	runner *projections.Runner
	router *mux.Router
	head   eventstore.Position
}

func newServer(t *testing.T, env *projectionstest.Env, afterTimeout time.Duration) *server {
	head := projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
	runner := projectionstest.StartRunner(t, env)
	router := mux.NewRouter()
	readapi.New(env.Read, env.Store, runner, readapi.WithAfterTimeout(afterTimeout)).Register(router)
	return &server{env: env, runner: runner, router: router, head: head}
}

func (s *server) get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	s.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// getJSON fetches target after the scripted history and decodes the 200 answer.
func (s *server) getJSON(t *testing.T, target string) any {
	t.Helper()
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	w := s.get(t, target+sep+"after="+s.head.String())
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s %s", target, w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var doc any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return doc
}

// expect compares the whole answer with the expected document.
func (s *server) expect(t *testing.T, target, want string) {
	t.Helper()
	got := s.getJSON(t, target)
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected document of %s: %v", target, err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		e, _ := json.Marshal(w)
		t.Errorf("GET %s:\n got %s\nwant %s", target, g, e)
	}
}

const (
	order1 = `{"order_id":"order-1","customer_id":"alice","channel":"web","currency":"USD","status":"completed",
		"payment_status":"partially_refunded","fulfillment_status":"partially_returned",
		"lines":[{"sku":"SKU-A","quantity":3,"unit_price":1000,"reserved":3,"backordered":0},{"sku":"SKU-B","quantity":1,"unit_price":500,"reserved":1,"backordered":0}],
		"subtotal":3500,"tax":350,"total":3850,"paid":3850,"refunded":1100,"outstanding":0,"invoice_number":"INV-1",
		"credit_notes":[{"credit_note_number":"CN-2","reason":"return","return_id":"ret-1","net":1000,"tax":100,"total":1100,"issued_at":"2025-03-04T15:01:00Z"}],
		"carrier":"DHL","tracking_number":"TRK-1","placed_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-04T15:02:00Z"}`
	order2 = `{"order_id":"order-2","customer_id":"bob","channel":"phone","currency":"USD","status":"confirmed",
		"payment_status":"partially_paid","fulfillment_status":"unfulfilled",
		"lines":[{"sku":"SKU-A","quantity":10,"unit_price":200,"reserved":10,"backordered":0}],
		"subtotal":2000,"tax":0,"total":2000,"paid":500,"refunded":0,"outstanding":1500,"invoice_number":"INV-3",
		"credit_notes":[],"carrier":null,"tracking_number":null,"placed_at":"2025-03-02T11:00:00Z","updated_at":"2025-03-05T12:00:00Z"}`
	order3 = `{"order_id":"order-3","customer_id":"alice","channel":"store","currency":"EUR","status":"cancelled",
		"payment_status":"paid","fulfillment_status":"unfulfilled",
		"lines":[{"sku":"SKU-B","quantity":1,"unit_price":700,"reserved":0,"backordered":0}],
		"subtotal":700,"tax":140,"total":840,"paid":0,"refunded":0,"outstanding":0,"invoice_number":"INV-2",
		"credit_notes":[{"credit_note_number":"CN-1","reason":"cancellation","return_id":null,"net":700,"tax":140,"total":840,"issued_at":"2025-03-03T16:01:00Z"}],
		"carrier":null,"tracking_number":null,"placed_at":"2025-03-03T14:00:00Z","updated_at":"2025-03-03T16:01:00Z"}`
	// In the base currency EUR: alice's only EUR order was cancelled and credited, bob has
	// none; their USD figures are in by_currency, never added to the EUR ones.
	alice = `{"customer_id":"alice","name":"Alice Archer","email":"alice@example.com","phone":"+1 555 0100","payment_preference":"card",
		"order_count":2,"lifetime_value":0,"outstanding_balance":0,
		"by_currency":{"EUR":{"lifetime_value":0,"outstanding_balance":0},"USD":{"lifetime_value":2750,"outstanding_balance":0}},
		"first_order_at":"2025-03-01T10:00:00Z","last_order_at":"2025-03-03T14:00:00Z",
		"channels":{"web":1,"store":1,"phone":0},
		"recent_orders":[{"order_id":"order-3","status":"cancelled","currency":"EUR","total":840,"placed_at":"2025-03-03T14:00:00Z"},
			{"order_id":"order-1","status":"completed","currency":"USD","total":3850,"placed_at":"2025-03-01T10:00:00Z"}],"erased":false}`
	bob = `{"customer_id":"bob","name":"Robert Baker","email":"bob@example.com","phone":"","payment_preference":"invoice",
		"order_count":1,"lifetime_value":0,"outstanding_balance":0,
		"by_currency":{"USD":{"lifetime_value":2000,"outstanding_balance":1500}},
		"first_order_at":"2025-03-02T11:00:00Z","last_order_at":"2025-03-02T11:00:00Z",
		"channels":{"web":0,"store":0,"phone":1},
		"recent_orders":[{"order_id":"order-2","status":"confirmed","currency":"USD","total":2000,"placed_at":"2025-03-02T11:00:00Z"}],"erased":false}`
	skuA = `{"sku":"SKU-A","on_hand":28,"reserved":10,"available":18,"backordered":0,"incoming":0,"reorder_point":5,"reorder_quantity":20,"supplier":"Acme","low_stock":false}`
	skuB = `{"sku":"SKU-B","on_hand":1,"reserved":0,"available":1,"backordered":0,"incoming":10,"reorder_point":2,"reorder_quantity":10,"supplier":"Bolt","low_stock":true}`
	poA  = `{"purchase_order_id":"PO-SKU-A-1","sku":"SKU-A","supplier":"Acme","quantity":20,"status":"received","raised_at":"2025-03-02T11:00:00Z","received_at":"2025-03-04T10:00:00Z"}`
	poB  = `{"purchase_order_id":"PO-SKU-B-1","sku":"SKU-B","supplier":"Bolt","quantity":10,"status":"open","raised_at":"2025-03-01T10:00:00Z","received_at":null}`
)

// TestScriptedHistory checks every read route's whole answer after the scripted history.
func TestScriptedHistory(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		s := newServer(t, env, readapi.DefaultAfterTimeout)

		s.expect(t, "/v1/orders/order-1", order1)
		s.expect(t, "/v1/orders/order-2", order2)
		s.expect(t, "/v1/orders/order-3", order3)
		s.expect(t, "/v1/orders", `{"items":[`+order3+`,`+order2+`,`+order1+`],"next_cursor":null}`)
		s.expect(t, "/v1/orders?customer_id=alice", `{"items":[`+order3+`,`+order1+`],"next_cursor":null}`)
		s.expect(t, "/v1/orders?status=confirmed", `{"items":[`+order2+`],"next_cursor":null}`)
		s.expect(t, "/v1/orders?channel=web", `{"items":[`+order1+`],"next_cursor":null}`)
		s.expect(t, "/v1/orders?customer_id=alice&channel=store&status=cancelled", `{"items":[`+order3+`],"next_cursor":null}`)
		s.expect(t, "/v1/orders?customer_id=bob&channel=web", `{"items":[],"next_cursor":null}`)

		page := s.getJSON(t, "/v1/orders?limit=2").(map[string]any)
		cursor, _ := page["next_cursor"].(string)
		if items := page["items"].([]any); len(items) != 2 || cursor == "" {
			t.Fatalf("first page of 2: %v", page)
		}
		s.expect(t, "/v1/orders?limit=2&cursor="+cursor, `{"items":[`+order1+`],"next_cursor":null}`)

		s.expect(t, "/v1/customers/alice", alice)
		s.expect(t, "/v1/customers/bob", bob)
		s.expect(t, "/v1/customers", `{"items":[`+alice+`,`+bob+`],"next_cursor":null}`)
		s.expect(t, "/v1/customers?sort=lifetime_value&limit=2", `{"items":[`+alice+`,`+bob+`],"next_cursor":null}`)

		s.expect(t, "/v1/inventory/SKU-A", skuA)
		s.expect(t, "/v1/inventory/SKU-B", skuB)
		s.expect(t, "/v1/inventory", `{"items":[`+skuA+`,`+skuB+`],"next_cursor":null}`)
		s.expect(t, "/v1/inventory?low_stock=true", `{"items":[`+skuB+`],"next_cursor":null}`)
		s.expect(t, "/v1/inventory?low_stock=false", `{"items":[`+skuA+`],"next_cursor":null}`)

		s.expect(t, "/v1/purchase-orders", `{"items":[`+poA+`,`+poB+`],"next_cursor":null}`)
		s.expect(t, "/v1/purchase-orders?status=open", `{"items":[`+poB+`],"next_cursor":null}`)
		s.expect(t, "/v1/purchase-orders?sku=SKU-A&status=received", `{"items":[`+poA+`],"next_cursor":null}`)

		// Books per currency: EUR (the base currency, answered when none is named) holds
		// order-3, invoiced and credited on the 3rd; USD holds order-1 and order-2.
		eurSummary := `{"currency":"EUR","orders":1,"invoiced":840,"credited":840,"net_sales":0,"tax":0,"payments":0,"refunds":0,
			"by_channel":{"web":{"orders":0,"net_sales":0},"store":{"orders":1,"net_sales":0},"phone":{"orders":0,"net_sales":0}}}`
		s.expect(t, "/v1/sales/summary", eurSummary)
		s.expect(t, "/v1/sales/summary?currency=EUR", eurSummary)
		s.expect(t, "/v1/sales/summary?currency=USD", `{"currency":"USD","orders":2,"invoiced":5850,"credited":1100,"net_sales":4750,"tax":250,"payments":4350,"refunds":1100,
			"by_channel":{"web":{"orders":1,"net_sales":2750},"store":{"orders":0,"net_sales":0},"phone":{"orders":1,"net_sales":2000}}}`)
		s.expect(t, "/v1/sales/summary?currency=JPY", `{"currency":"JPY","orders":0,"invoiced":0,"credited":0,"net_sales":0,"tax":0,"payments":0,"refunds":0,
			"by_channel":{"web":{"orders":0,"net_sales":0},"store":{"orders":0,"net_sales":0},"phone":{"orders":0,"net_sales":0}}}`)
		// Dates cover whole UTC days: the 3rd and the 4th.
		s.expect(t, "/v1/sales/summary?currency=USD&from=2025-03-03&to=2025-03-04", `{"currency":"USD","orders":0,"invoiced":2000,"credited":1100,"net_sales":900,"tax":-100,"payments":0,"refunds":1100,
			"by_channel":{"web":{"orders":0,"net_sales":-1100},"store":{"orders":0,"net_sales":0},"phone":{"orders":0,"net_sales":2000}}}`)
		s.expect(t, "/v1/sales/summary?from=2025-03-03&to=2025-03-04", eurSummary)
		// Times are exact, from included, to not: order-1 placed at 10:00:00 and order-2 at
		// 11:00:00 on the 2nd fall outside.
		s.expect(t, "/v1/sales/summary?currency=USD&from=2025-03-01T10:00:30Z&to=2025-03-02T11:00:00Z", `{"currency":"USD","orders":0,"invoiced":3850,"credited":0,"net_sales":3850,"tax":350,"payments":3850,"refunds":0,
			"by_channel":{"web":{"orders":0,"net_sales":3850},"store":{"orders":0,"net_sales":0},"phone":{"orders":0,"net_sales":0}}}`)
		s.expect(t, "/v1/sales/daily?currency=USD", `{"currency":"USD","days":[
			{"date":"2025-03-01","orders":1,"invoiced":3850,"credited":0,"payments":0},
			{"date":"2025-03-02","orders":1,"invoiced":0,"credited":0,"payments":3850},
			{"date":"2025-03-04","orders":0,"invoiced":2000,"credited":1100,"payments":0},
			{"date":"2025-03-05","orders":0,"invoiced":0,"credited":0,"payments":500}]}`)
		s.expect(t, "/v1/sales/daily", `{"currency":"EUR","days":[{"date":"2025-03-03","orders":1,"invoiced":840,"credited":840,"payments":0}]}`)
		s.expect(t, "/v1/sales/daily?currency=USD&from=2025-03-04", `{"currency":"USD","days":[
			{"date":"2025-03-04","orders":0,"invoiced":2000,"credited":1100,"payments":0},
			{"date":"2025-03-05","orders":0,"invoiced":0,"credited":0,"payments":500}]}`)

		s.expect(t, "/v1/ledger/trial-balance?currency=USD", `{"currency":"USD","accounts":[
			{"account":"accounts_receivable","debit":6950,"credit":5450},{"account":"cash","debit":4350,"credit":1100},
			{"account":"revenue","debit":1000,"credit":5500},{"account":"tax_payable","debit":100,"credit":350}],
			"total_debit":12400,"total_credit":12400}`)
		s.expect(t, "/v1/ledger/trial-balance", `{"currency":"EUR","accounts":[
			{"account":"accounts_receivable","debit":840,"credit":840},{"account":"cash","debit":0,"credit":0},
			{"account":"revenue","debit":700,"credit":700},{"account":"tax_payable","debit":140,"credit":140}],
			"total_debit":1680,"total_credit":1680}`)
		// The books at the close of the 2nd: INV-1 and its payment.
		closeOfDay2 := `{"currency":"USD","accounts":[
			{"account":"accounts_receivable","debit":3850,"credit":3850},{"account":"cash","debit":3850,"credit":0},
			{"account":"revenue","debit":0,"credit":3500},{"account":"tax_payable","debit":0,"credit":350}],
			"total_debit":7700,"total_credit":7700}`
		s.expect(t, "/v1/ledger/trial-balance?currency=USD&to=2025-03-02", closeOfDay2)
		s.expect(t, "/v1/ledger/trial-balance?currency=USD&to=2025-03-02T09:00:00Z", closeOfDay2) // at or before: the payment counts
		s.expect(t, "/v1/ledger/trial-balance?currency=USD&to=2025-03-01T10:00:59Z", `{"currency":"USD","accounts":[
			{"account":"accounts_receivable","debit":0,"credit":0},{"account":"cash","debit":0,"credit":0},
			{"account":"revenue","debit":0,"credit":0},{"account":"tax_payable","debit":0,"credit":0}],"total_debit":0,"total_credit":0}`)
		s.expect(t, "/v1/ledger/currencies", `{"items":["EUR","USD"]}`)
		ids := postingIDs(t, env.Store)
		s.expect(t, "/v1/ledger/entries?order_id=order-1", `{"items":[
			{"entry_id":"`+ids["INV-1"]+`","order_id":"order-1","currency":"USD","kind":"invoice","document":"INV-1","posted_at":"2025-03-01T10:01:00Z",
				"lines":[{"account":"accounts_receivable","debit":3850,"credit":0},{"account":"revenue","debit":0,"credit":3500},{"account":"tax_payable","debit":0,"credit":350}]},
			{"entry_id":"`+ids["pay-1"]+`","order_id":"order-1","currency":"USD","kind":"payment","document":"pay-1","posted_at":"2025-03-02T09:00:00Z",
				"lines":[{"account":"cash","debit":3850,"credit":0},{"account":"accounts_receivable","debit":0,"credit":3850}]},
			{"entry_id":"`+ids["CN-2"]+`","order_id":"order-1","currency":"USD","kind":"credit_note","document":"CN-2","posted_at":"2025-03-04T15:01:00Z",
				"lines":[{"account":"revenue","debit":1000,"credit":0},{"account":"tax_payable","debit":100,"credit":0},{"account":"accounts_receivable","debit":0,"credit":1100}]},
			{"entry_id":"`+ids["ref-1"]+`","order_id":"order-1","currency":"USD","kind":"refund","document":"ref-1","posted_at":"2025-03-04T15:02:00Z",
				"lines":[{"account":"accounts_receivable","debit":1100,"credit":0},{"account":"cash","debit":0,"credit":1100}]}],
			"next_cursor":null}`)
		// Paging through the whole journal gives every entry once, oldest first.
		var documents []string
		for cursor := ""; ; {
			target := "/v1/ledger/entries?limit=3"
			if cursor != "" {
				target += "&cursor=" + cursor
			}
			page := s.getJSON(t, target).(map[string]any)
			for _, e := range page["items"].([]any) {
				documents = append(documents, e.(map[string]any)["document"].(string))
			}
			next, ok := page["next_cursor"].(string)
			if !ok {
				break
			}
			cursor = next
		}
		if got := strings.Join(documents, " "); got != "INV-1 pay-1 INV-2 CN-1 INV-3 CN-2 ref-1 pay-2" {
			t.Errorf("the journal pages through %s", got)
		}

		// The history is the order stream as stored.
		stored, err := env.Store.ReadStream(t.Context(), domain.OrderStream("order-3"), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []map[string]any{}
		for _, e := range stored {
			var data any
			if err := json.Unmarshal(e.Data, &data); err != nil {
				t.Fatal(err)
			}
			var actor any
			if e.Metadata.Actor != "" {
				actor = e.Metadata.Actor
			}
			want = append(want, map[string]any{"position": e.Position.String(), "version": float64(e.Version), "type": e.Type,
				"recorded_at": e.RecordedAt.UTC().Format(time.RFC3339Nano), "actor": actor, "data": data})
		}
		history := s.getJSON(t, "/v1/orders/order-3/history").(map[string]any)["events"].([]any)
		types := []string{}
		for i, e := range history {
			types = append(types, e.(map[string]any)["type"].(string))
			if i < len(want) && !reflect.DeepEqual(e, any(want[i])) {
				t.Errorf("history event %d: %v, want %v", i, e, want[i])
			}
		}
		if got := strings.Join(types, " "); got != "OrderPlaced.v1 OrderLineAllocated.v1 OrderConfirmed.v1 OrderInvoiced.v1 OrderCancelled.v1 CreditNoteIssued.v1" {
			t.Errorf("order-3's history: %s", got)
		}

		// The journal of the USD books, as hledger reads it: major units with USD's 2 digits,
		// debits positive, credits negative.
		journal := s.get(t, "/v1/ledger/journal?currency=USD&after="+s.head.String())
		wantJournal := "; orderledger journal, currency USD, amounts in major units (2 digits)\n\n" +
			"2025-03-01 invoice INV-1 order order-1  ; entry_id:" + ids["INV-1"] + ", posted_at:2025-03-01T10:01:00Z\n" +
			"    accounts_receivable    38.50 USD\n    revenue                -35.00 USD\n    tax_payable            -3.50 USD\n\n" +
			"2025-03-02 payment pay-1 order order-1  ; entry_id:" + ids["pay-1"] + ", posted_at:2025-03-02T09:00:00Z\n" +
			"    cash                   38.50 USD\n    accounts_receivable    -38.50 USD\n\n" +
			"2025-03-04 invoice INV-3 order order-2  ; entry_id:" + ids["INV-3"] + ", posted_at:2025-03-04T10:01:00Z\n" +
			"    accounts_receivable    20.00 USD\n    revenue                -20.00 USD\n    tax_payable            0.00 USD\n\n" +
			"2025-03-04 credit_note CN-2 order order-1  ; entry_id:" + ids["CN-2"] + ", posted_at:2025-03-04T15:01:00Z\n" +
			"    revenue                10.00 USD\n    tax_payable            1.00 USD\n    accounts_receivable    -11.00 USD\n\n" +
			"2025-03-04 refund ref-1 order order-1  ; entry_id:" + ids["ref-1"] + ", posted_at:2025-03-04T15:02:00Z\n" +
			"    accounts_receivable    11.00 USD\n    cash                   -11.00 USD\n\n" +
			"2025-03-05 payment pay-2 order order-2  ; entry_id:" + ids["pay-2"] + ", posted_at:2025-03-05T12:00:00Z\n" +
			"    cash                   5.00 USD\n    accounts_receivable    -5.00 USD\n\n"
		if journal.Code != http.StatusOK || journal.Header().Get("Content-Type") != "text/plain; charset=utf-8" || journal.Body.String() != wantJournal {
			t.Errorf("GET /v1/ledger/journal?currency=USD: %d %s\n%s\nwant\n%s", journal.Code, journal.Header().Get("Content-Type"), journal.Body, wantJournal)
		}
		csvAnswer := s.get(t, "/v1/ledger/journal?currency=EUR&format=csv&to=2025-03-03&after="+s.head.String())
		wantCSV := "entry_id,posted_at,order_id,kind,document,account,debit,credit,currency\n" +
			ids["INV-2"] + ",2025-03-03T14:01:00Z,order-3,invoice,INV-2,accounts_receivable,840,0,EUR\n" +
			ids["INV-2"] + ",2025-03-03T14:01:00Z,order-3,invoice,INV-2,revenue,0,700,EUR\n" +
			ids["INV-2"] + ",2025-03-03T14:01:00Z,order-3,invoice,INV-2,tax_payable,0,140,EUR\n" +
			ids["CN-1"] + ",2025-03-03T16:01:00Z,order-3,credit_note,CN-1,revenue,700,0,EUR\n" +
			ids["CN-1"] + ",2025-03-03T16:01:00Z,order-3,credit_note,CN-1,tax_payable,140,0,EUR\n" +
			ids["CN-1"] + ",2025-03-03T16:01:00Z,order-3,credit_note,CN-1,accounts_receivable,0,840,EUR\n"
		if csvAnswer.Code != http.StatusOK || csvAnswer.Header().Get("Content-Type") != "text/csv; charset=utf-8" || csvAnswer.Body.String() != wantCSV {
			t.Errorf("GET /v1/ledger/journal?currency=EUR&format=csv: %d %s\n%s\nwant\n%s", csvAnswer.Code, csvAnswer.Header().Get("Content-Type"), csvAnswer.Body, wantCSV)
		}
		if empty := s.get(t, "/v1/ledger/journal?currency=USD&from=2025-03-06"); empty.Body.String() != "; orderledger journal, currency USD, amounts in major units (2 digits)\n\n" {
			t.Errorf("an empty period's journal: %q", empty.Body)
		}

		// With USD as the base currency, customers answer their USD figures and rank by them.
		usd := &server{env: env, runner: s.runner, router: mux.NewRouter(), head: s.head}
		readapi.New(env.Read, env.Store, s.runner, readapi.WithBaseCurrency("USD")).Register(usd.router)
		inUSD := func(doc, ltv, outstanding string) string {
			return strings.Replace(doc, `"lifetime_value":0,"outstanding_balance":0,`, `"lifetime_value":`+ltv+`,"outstanding_balance":`+outstanding+`,`, 1)
		}
		usd.expect(t, "/v1/customers/bob", inUSD(bob, "2000", "1500"))
		usd.expect(t, "/v1/customers", `{"items":[`+inUSD(alice, "2750", "0")+`,`+inUSD(bob, "2000", "1500")+`],"next_cursor":null}`)
		usd.expect(t, "/v1/sales/daily?from=2025-03-05", `{"currency":"USD","days":[{"date":"2025-03-05","orders":0,"invoiced":0,"credited":0,"payments":500}]}`)
	})
}

// postingIDs maps each posted document to the ID of the event that posted it, the ID of its
// journal entry.
func postingIDs(t *testing.T, store eventstore.Store) map[string]string {
	events, err := store.ReadAll(t.Context(), eventstore.Position{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, e := range events {
		if !domain.KnownEventType(e.Type) {
			continue
		}
		d, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if entry, ok := projections.Posting(e.ID.String(), d); ok {
			ids[entry.Document] = entry.EntryID
		}
	}
	return ids
}

// TestBadRequests: malformed or unknown parameters are 400s naming the parameter, unknown
// resources 404s, all as problem+json.
func TestBadRequests(t *testing.T) {
	s := newServer(t, projectionstest.OpenSQLite(t), time.Second)
	projectionstest.CatchUp(t, s.runner, s.head)
	orderCursor := s.getJSON(t, "/v1/orders?limit=1").(map[string]any)["next_cursor"].(string)
	for _, c := range []struct {
		target, param string
	}{
		{"/v1/orders?limit=0", "limit"},
		{"/v1/orders?limit=501", "limit"},
		{"/v1/orders?limit=ten", "limit"},
		{"/v1/orders?limit=05", "limit"},
		{"/v1/orders?limit=1&limit=2", "limit"},
		{"/v1/orders?status=lost", "status"},
		{"/v1/orders?channel=fax", "channel"},
		{"/v1/orders?cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"/v1/orders?cursor=%%%", "query"},
		{"/v1/orders?customer_id=a%20b", "customer_id"},
		{"/v1/orders?colour=red", "colour"},
		{"/v1/orders/order-1?after=later", "after"},
		{"/v1/orders/order-1?after=1", "after"},
		{"/v1/orders/order-1?as_of=2025-03-02", "as_of"},
		{"/v1/customers/alice?as_of=2025-03-02T00:00:00Z", "as_of"},
		{"/v1/orders/order-1/history?after=x-y", "after"},
		{"/v1/customers?sort=name", "sort"},
		{"/v1/customers?limit=-1", "limit"},
		{"/v1/customers?limit=0", "limit"},
		{"/v1/customers?limit=501", "limit"},
		{"/v1/customers?cursor=" + orderCursor, "cursor"},
		{"/v1/customers?cursor=%%%", "query"},
		{"/v1/customers?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("c1:ten:alice")), "cursor"},
		{"/v1/inventory?limit=0", "limit"},
		{"/v1/inventory?limit=501", "limit"},
		{"/v1/inventory?cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"/v1/inventory?cursor=" + orderCursor, "cursor"},
		{"/v1/inventory?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("s1:a b")), "cursor"},
		{"/v1/purchase-orders?limit=0", "limit"},
		{"/v1/purchase-orders?limit=501", "limit"},
		{"/v1/purchase-orders?cursor=" + orderCursor, "cursor"},
		{"/v1/purchase-orders?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("p1:x:PO-1")), "cursor"},
		{"/v1/inventory?low_stock=yes", "low_stock"},
		{"/v1/purchase-orders?status=closed", "status"},
		{"/v1/purchase-orders?sku=%3F", "sku"},
		{"/v1/sales/summary?from=yesterday", "from"},
		{"/v1/sales/summary?to=2025-13-01", "to"},
		{"/v1/sales/daily?from=2025-03-05&to=2025-03-01", "from"},
		{"/v1/ledger/entries?cursor=" + orderCursor, "cursor"},
		{"/v1/ledger/entries?order_id=" + strings.Repeat("x", 65), "order_id"},
		{"/v1/ledger/trial-balance?after=1-1&debug=1", "debug"},
		// A path identifier that cannot be one is malformed input, as on the write routes.
		{"/v1/orders/no%20such", "id"},
		{"/v1/orders/bad!id/history", "id"},
		{"/v1/customers/" + strings.Repeat("x", 65), "id"},
		{"/v1/inventory/a%2Ab", "sku"},
	} {
		w := s.get(t, c.target)
		problem := decodeProblem(t, c.target, w)
		if w.Code != http.StatusBadRequest || problem.Code != "invalid_input" || !strings.Contains(problem.Detail, c.param) {
			t.Errorf("GET %s: %d %+v, want a 400 naming %s", c.target, w.Code, problem, c.param)
		}
	}
	for _, c := range []struct{ target, code string }{
		{"/v1/orders/order-9", "order_not_found"},
		{"/v1/orders/order-9/history", "order_not_found"},
		{"/v1/customers/carol", "customer_not_found"},
		{"/v1/inventory/SKU-Z", "sku_not_found"},
	} {
		w := s.get(t, c.target)
		if problem := decodeProblem(t, c.target, w); w.Code != http.StatusNotFound || problem.Code != c.code {
			t.Errorf("GET %s: %d %+v, want 404 %s", c.target, w.Code, problem, c.code)
		}
	}
}

type problem struct {
	Type, Title, Detail, Code string
	Status                    int
}

func decodeProblem(t *testing.T, target string, w *httptest.ResponseRecorder) problem {
	t.Helper()
	var p problem
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("GET %s: content type %q, want application/problem+json (%d %s)", target, ct, w.Code, w.Body)
		return p
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Type == "" || p.Title == "" {
		t.Errorf("GET %s: problem %s (err %v)", target, w.Body, err)
	}
	return p
}

// TestAfter: a read after a write's position shows the write, every time; a position that
// never comes is a 504 once the wait is over.
func TestAfter(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		// Long enough for the projectors to catch up on a loaded machine; the position that
		// never comes costs the whole wait.
		const wait = 2 * time.Second
		s := newServer(t, env, wait)
		for i := range 10 {
			id := fmt.Sprintf("dave-%d", i)
			pos := projectionstest.Append(t, env.Store, []historygen.Record{{Stream: domain.CustomerStream(id),
				Event: domain.CustomerRegistered{CustomerID: id, Name: "Dave", Email: "dave@example.com", RegisteredAt: projectionstest.Day(6, 9, i)}}})
			if w := s.get(t, "/v1/customers/"+id+"?after="+pos.String()); w.Code != http.StatusOK {
				t.Fatalf("customer %s after %s: %d %s", id, pos, w.Code, w.Body)
			}
			pos = projectionstest.Append(t, env.Store, []historygen.Record{{Stream: domain.OrderStream("order-2"),
				Event: domain.PaymentReceived{OrderID: "order-2", PaymentID: id, Amount: 1, Method: "cash", ReceivedAt: projectionstest.Day(6, 10, i)}}})
			var o projections.Order
			w := s.get(t, "/v1/orders/order-2?after="+pos.String())
			if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || o.Paid != int64(501+i) {
				t.Fatalf("order-2 after payment %d at %s: %d %s", i+1, pos, w.Code, w.Body)
			}
		}

		never := eventstore.Position{Commit: s.head.Commit + 1_000_000, Prepare: s.head.Prepare + 1_000_000}
		start := time.Now()
		w := s.get(t, "/v1/ledger/trial-balance?after="+never.String())
		if p := decodeProblem(t, "trial balance", w); w.Code != http.StatusGatewayTimeout || p.Code != "timeout" || !strings.Contains(p.Detail, never.String()) {
			t.Errorf("waiting for %s: %d %+v, want a 504 naming the position", never, w.Code, p)
		}
		if waited := time.Since(start); waited < wait {
			t.Errorf("answered after %s, before the %s wait was over", waited, wait)
		}
	})
}

// stoppedWaiter stands for a runner whose projector stopped on a broken event.
type stoppedWaiter struct{}

func (stoppedWaiter) WaitFor(context.Context, eventstore.Position, ...string) error {
	return fmt.Errorf("%w: projector sales stopped at event 7-7", projections.ErrProjectorStopped)
}

// TestAfterAStoppedProjector: waiting on a projector that stopped is a 503 saying so, at once.
func TestAfterAStoppedProjector(t *testing.T) {
	router := mux.NewRouter()
	readapi.New(nil, nil, stoppedWaiter{}).Register(router)
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/sales/summary?after=9-9", nil))
	if p := decodeProblem(t, "summary", w); w.Code != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "stopped at event 7-7") {
		t.Errorf("after a stopped projector: %d %+v, want a 503 naming the broken event", w.Code, p)
	}
}

// TestListsPage walks every paged list one item at a time, and at the largest page, and
// checks the pages add up to the whole list in its order: the customers' ranking both when
// every lifetime value ties (EUR) and when they differ (USD as the base currency).
func TestListsPage(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		s := newServer(t, env, readapi.DefaultAfterTimeout)
		usd := &server{env: env, runner: s.runner, router: mux.NewRouter(), head: s.head}
		readapi.New(env.Read, env.Store, s.runner, readapi.WithBaseCurrency("USD")).Register(usd.router)
		for _, c := range []struct {
			srv             *server
			list, key, want string
		}{
			{s, "/v1/customers", "customer_id", "alice bob"},
			{usd, "/v1/customers?sort=lifetime_value", "customer_id", "alice bob"},
			{s, "/v1/inventory", "sku", "SKU-A SKU-B"},
			{s, "/v1/inventory?low_stock=false", "sku", "SKU-A"},
			{s, "/v1/purchase-orders", "purchase_order_id", "PO-SKU-A-1 PO-SKU-B-1"},
			{s, "/v1/purchase-orders?status=open", "purchase_order_id", "PO-SKU-B-1"},
			{s, "/v1/orders", "order_id", "order-3 order-2 order-1"},
		} {
			for _, limit := range []int{1, 2, 500} {
				if got := c.srv.walk(t, c.list, c.key, limit); got != c.want {
					t.Errorf("%s in pages of %d: %s, want %s", c.list, limit, got, c.want)
				}
			}
		}
	})
}

// walk follows next_cursor through list in pages of limit and names the items in order by key.
func (s *server) walk(t *testing.T, list, key string, limit int) string {
	t.Helper()
	var ids []string
	for cursor, pages := "", 0; ; pages++ {
		sep := "?"
		if strings.Contains(list, "?") {
			sep = "&"
		}
		target := fmt.Sprintf("%s%slimit=%d", list, sep, limit)
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		page := s.getJSON(t, target).(map[string]any)
		items := page["items"].([]any)
		if len(items) > limit || (len(items) == 0 && pages > 0) {
			t.Fatalf("GET %s: %d items", target, len(items))
		}
		for _, item := range items {
			id, _ := item.(map[string]any)[key].(string)
			ids = append(ids, id)
		}
		next, ok := page["next_cursor"].(string)
		if !ok {
			if page["next_cursor"] != nil {
				t.Fatalf("GET %s: next_cursor %v", target, page["next_cursor"])
			}
			return strings.Join(ids, " ")
		}
		if pages > 10 {
			t.Fatalf("GET %s: more than 10 pages", list)
		}
		cursor = next
	}
}
