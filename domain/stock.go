package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxQuantity bounds the units a client's command may move: an order line, a receipt, an
// adjustment, a reorder point or quantity. A SKU's backorders, incoming units and forecast
// are sums of such quantities, and the automation's commands on them must never be refused;
// with this bound those sums stay exact in int64 short of billions of orders on one SKU.
const MaxQuantity = 1_000_000_000

// Stock is the folded state of one SKU's stream. It owns every stock invariant:
// reserved ≤ on hand, backorders served oldest first, and one purchase order per shortfall.
// Build it only with EvolveStock; Decide functions read it and never change it.
type Stock struct {
	SKU      string
	Exists   bool
	OnHand   int64
	Reserved int64
	Incoming int64
	Policy   ReplenishmentPolicy
	// Replenishments counts purchase orders raised, to name the next one.
	Replenishments int64

	queue        []Backorder      // oldest first; non-empty only while available is 0
	reservations map[string]int64 // order → units reserved and not yet shipped
	openPOs      map[string]int64 // purchase order → units still incoming

	// What makes a repeated command a no-op. An order is remembered while it holds units or
	// waits for them (by its reservation or backorder: asked holds only closed orders), and
	// for the last RememberedPerStream orders that stopped holding any (shipped, or released
	// after asking); a release that came before the order asked is remembered for good, so
	// that a late request is refused. Returns and purchase order
	// receipts are remembered for the last RememberedPerStream of each. A repeat older than
	// that is recognised by its event IDs instead (the command handler, the store), so the
	// state stays the size of what is open, however long the SKU's history.
	asked     map[string]bool // closed orders that had asked for this SKU (see hasAsked)
	released  map[string]bool
	shipped   map[string]bool
	restocked map[orderReturn]bool
	received  map[string]bool // purchase orders received

	closedOrders []string      // orders that stopped holding units, oldest first
	restocks     []orderReturn // returns restocked, oldest first
	receipts     []string      // purchase orders received, oldest first
}

// RememberedPerStream is how many closed orders, returns and purchase order receipts a stock
// stream's state remembers, and how many documents a numbering series remembers the numbers
// of: enough for a process manager replaying from its checkpoint after a crash, which repeats
// the last few hundred commands at most.
const RememberedPerStream = 256

// orderReturn names a return: its ID is the order's own (the order stream keys returns), so
// two orders may use the same one.
type orderReturn struct{ orderID, returnID string }

// ReplenishmentPolicy says when and how much to reorder; Supplier is empty when none is set.
type ReplenishmentPolicy struct {
	ReorderPoint    int64
	ReorderQuantity int64
	Supplier        string
}

// IsSet reports whether a policy has been set.
func (p ReplenishmentPolicy) IsSet() bool { return p.Supplier != "" }

// Backorder is an order waiting for units, in the queue.
type Backorder struct {
	OrderID  string
	Quantity int64
}

// Available is on hand less reserved.
func (s Stock) Available() int64 { return s.OnHand - s.Reserved }

// Backordered is the total of the backorder queue.
func (s Stock) Backordered() int64 {
	var n int64
	for _, b := range s.queue {
		n += b.Quantity
	}
	return n
}

// Backorders returns a copy of the queue, oldest first.
func (s Stock) Backorders() []Backorder { return append([]Backorder(nil), s.queue...) }

// ReservedFor returns the units reserved for an order and not yet shipped.
func (s Stock) ReservedFor(orderID string) int64 { return s.reservations[orderID] }

// LowStock reports available ≤ reorder point for a SKU with a policy.
func (s Stock) LowStock() bool { return s.Policy.IsSet() && s.Available() <= s.Policy.ReorderPoint }

// Stock commands. At is the time the command is decided at; IDs come from the caller.
type (
	ReceiveStock struct {
		SKU             string
		Quantity        int64
		Reference       string
		PurchaseOrderID string // set when the receipt is a purchase order's
		At              time.Time
	}
	AdjustStock struct {
		SKU    string
		Delta  int64
		Reason string
		At     time.Time
	}
	SetReplenishmentPolicy struct {
		SKU             string
		ReorderPoint    int64
		ReorderQuantity int64
		Supplier        string
		At              time.Time
	}
	ReserveStock struct {
		SKU      string
		OrderID  string
		Quantity int64
		At       time.Time
	}
	ReleaseStock struct {
		SKU     string
		OrderID string
		At      time.Time
	}
	ShipStock struct {
		SKU      string
		OrderID  string
		Quantity int64
		At       time.Time
	}
	RestockReturn struct {
		SKU      string
		OrderID  string
		ReturnID string
		Quantity int64
		At       time.Time
	}
)

// EvolveStock applies one event. It takes ownership of s: callers use the returned value only.
func EvolveStock(s Stock, e Event) Stock { return evolveStock(s, e, RememberedPerStream) }

// evolveStock is EvolveStock remembering up to remember closed orders, returns and receipts.
func evolveStock(s Stock, e Event, remember int) Stock {
	if s.reservations == nil {
		s.reservations = map[string]int64{}
		s.asked = map[string]bool{}
		s.released = map[string]bool{}
		s.shipped = map[string]bool{}
		s.restocked = map[orderReturn]bool{}
		s.received = map[string]bool{}
		s.openPOs = map[string]int64{}
	}
	switch e := e.(type) {
	case StockReceived:
		s.SKU, s.Exists = e.SKU, true
		s.OnHand += e.Quantity
		if e.PurchaseOrderID != "" {
			s.received[e.PurchaseOrderID] = true
			s.receipts = append(s.receipts, e.PurchaseOrderID)
			if len(s.receipts) > remember {
				delete(s.received, s.receipts[0])
				s.receipts = s.receipts[1:]
			}
			s.Incoming -= s.openPOs[e.PurchaseOrderID]
			delete(s.openPOs, e.PurchaseOrderID)
		}
	case StockAdjusted:
		s.OnHand += e.Delta
	case ReplenishmentPolicySet:
		s.Policy = ReplenishmentPolicy{ReorderPoint: e.ReorderPoint, ReorderQuantity: e.ReorderQuantity, Supplier: e.Supplier}
	case StockAllocated:
		if e.Reserved > 0 {
			s.Reserved += e.Reserved
			s.reservations[e.OrderID] += e.Reserved
		}
		if e.Backordered > 0 {
			s.queue = append(s.queue, Backorder{OrderID: e.OrderID, Quantity: e.Backordered})
		}
	case BackorderFilled:
		s.Reserved += e.Quantity
		s.reservations[e.OrderID] += e.Quantity
		s.queue = takeFromQueue(s.queue, e.OrderID, e.Quantity)
	case StockReleased:
		asked := s.hasAsked(e.OrderID)
		s.released[e.OrderID] = true
		s.Reserved -= e.Reserved
		delete(s.reservations, e.OrderID)
		s.queue = takeFromQueue(s.queue, e.OrderID, e.Backordered)
		if asked {
			s = s.closeOrder(e.OrderID, remember)
		}
	case StockShipped:
		s.shipped[e.OrderID] = true
		s.OnHand -= e.Quantity
		s.Reserved -= e.Quantity
		if left := s.reservations[e.OrderID] - e.Quantity; left > 0 {
			s.reservations[e.OrderID] = left
		} else {
			delete(s.reservations, e.OrderID)
			if !s.waiting(e.OrderID) {
				s = s.closeOrder(e.OrderID, remember)
			}
		}
	case StockRestocked:
		key := orderReturn{e.OrderID, e.ReturnID}
		s.restocked[key] = true
		s.restocks = append(s.restocks, key)
		if len(s.restocks) > remember {
			delete(s.restocked, s.restocks[0])
			s.restocks = s.restocks[1:]
		}
		s.OnHand += e.Quantity
	case ReplenishmentRequested:
		s.Replenishments++
		s.Incoming += e.Quantity
		s.openPOs[e.PurchaseOrderID] = e.Quantity
	}
	return s
}

// closeOrder records that orderID holds nothing more here, and forgets the oldest closed order
// once more than remember are remembered, unless it holds units again (asked again after it
// was forgotten, which only a repeat older than the window can do).
func (s Stock) closeOrder(orderID string, remember int) Stock {
	s.asked[orderID] = true
	s.closedOrders = append(s.closedOrders, orderID)
	if len(s.closedOrders) > remember {
		oldest := s.closedOrders[0]
		s.closedOrders = s.closedOrders[1:]
		if s.reservations[oldest] > 0 || s.waiting(oldest) {
			return s
		}
		delete(s.asked, oldest)
		delete(s.released, oldest)
		delete(s.shipped, oldest)
	}
	return s
}

// hasAsked reports whether orderID has asked for this SKU: it holds units or waits for them,
// or it is a closed order still remembered.
func (s Stock) hasAsked(orderID string) bool {
	return s.asked[orderID] || s.reservations[orderID] > 0 || s.waiting(orderID)
}

// waiting reports whether orderID has a backorder in the queue.
func (s Stock) waiting(orderID string) bool {
	for _, b := range s.queue {
		if b.OrderID == orderID {
			return true
		}
	}
	return false
}

// takeFromQueue removes quantity units of orderID's backorder, dropping the entry when empty.
func takeFromQueue(queue []Backorder, orderID string, quantity int64) []Backorder {
	for i, b := range queue {
		if b.OrderID != orderID {
			continue
		}
		if b.Quantity > quantity {
			out := append([]Backorder(nil), queue...)
			out[i].Quantity -= quantity
			return out
		}
		return append(append([]Backorder(nil), queue[:i]...), queue[i+1:]...)
	}
	return queue
}

// DecideReceiveStock puts units on hand; the first receipt creates the SKU.
func DecideReceiveStock(s Stock, cmd ReceiveStock) ([]Event, error) {
	check := checkID
	if !s.Exists {
		check = checkNewID // the first receipt creates the SKU
	}
	if err := check("sku", cmd.SKU); err != nil {
		return nil, err
	}
	if cmd.Quantity <= 0 {
		return nil, invalid("quantity", "must be > 0, got %d", cmd.Quantity)
	}
	if chars(cmd.Reference) > 200 {
		return nil, invalid("reference", "must be at most 200 characters")
	}
	if cmd.PurchaseOrderID != "" && s.received[cmd.PurchaseOrderID] {
		return nil, nil // this purchase order is already in stock
	}
	onHand, err := AddAmounts(s.OnHand, cmd.Quantity)
	if err != nil {
		return nil, fmt.Errorf("%w: on hand %d + quantity %d", ErrAmountOverflow, s.OnHand, cmd.Quantity)
	}
	// A purchase order's receipt is the automation's and brings what the SKU ordered, which
	// a large shortfall can take past the bound.
	if cmd.PurchaseOrderID == "" && cmd.Quantity > MaxQuantity {
		return nil, invalid("quantity", "must be at most %d, got %d", MaxQuantity, cmd.Quantity)
	}
	incoming := s.Incoming
	if cmd.PurchaseOrderID != "" {
		incoming -= s.openPOs[cmd.PurchaseOrderID]
	}
	events := []Event{StockReceived{SKU: cmd.SKU, Quantity: cmd.Quantity, Reference: cmd.Reference, PurchaseOrderID: cmd.PurchaseOrderID, ReceivedAt: cmd.At}}
	return append(events, s.followUps(cmd.SKU, onHand, s.Reserved, incoming, s.queue, s.Policy, cmd.At)...), nil
}

// DecideAdjustStock corrects on hand (a count, damage, shrinkage); it may not go below what is
// reserved.
func DecideAdjustStock(s Stock, cmd AdjustStock) ([]Event, error) {
	if err := checkID("sku", cmd.SKU); err != nil {
		return nil, err
	}
	if cmd.Delta == 0 || cmd.Delta < -MaxQuantity || cmd.Delta > MaxQuantity {
		return nil, invalid("delta", "must be non-zero and within ±%d, got %d", MaxQuantity, cmd.Delta)
	}
	if strings.TrimSpace(cmd.Reason) == "" || chars(cmd.Reason) > 500 {
		return nil, invalid("reason", "must be 1..500 characters")
	}
	if !s.Exists {
		return nil, fmt.Errorf("%w: %s", ErrSKUNotFound, cmd.SKU)
	}
	onHand, err := AddAmounts(s.OnHand, cmd.Delta)
	if err != nil {
		return nil, err
	}
	if onHand < s.Reserved {
		return nil, fmt.Errorf("%w: on hand %d %+d = %d is below reserved %d", ErrInsufficientStock, s.OnHand, cmd.Delta, onHand, s.Reserved)
	}
	events := []Event{StockAdjusted{SKU: s.SKU, Delta: cmd.Delta, Reason: cmd.Reason, AdjustedAt: cmd.At}}
	return append(events, s.followUps(s.SKU, onHand, s.Reserved, s.Incoming, s.queue, s.Policy, cmd.At)...), nil
}

// DecideSetReplenishmentPolicy sets when and how much to reorder, and reorders at once if the
// SKU is already below the new reorder point.
func DecideSetReplenishmentPolicy(s Stock, cmd SetReplenishmentPolicy) ([]Event, error) {
	if err := checkID("sku", cmd.SKU); err != nil {
		return nil, err
	}
	if cmd.ReorderPoint < 0 || cmd.ReorderPoint > MaxQuantity {
		return nil, invalid("reorder_point", "must be 0..%d, got %d", MaxQuantity, cmd.ReorderPoint)
	}
	if cmd.ReorderQuantity <= 0 || cmd.ReorderQuantity > MaxQuantity {
		return nil, invalid("reorder_quantity", "must be 1..%d, got %d", MaxQuantity, cmd.ReorderQuantity)
	}
	if strings.TrimSpace(cmd.Supplier) == "" || chars(cmd.Supplier) > 200 {
		return nil, invalid("supplier", "must be 1..200 characters")
	}
	if !s.Exists {
		return nil, fmt.Errorf("%w: %s", ErrSKUNotFound, cmd.SKU)
	}
	policy := ReplenishmentPolicy{ReorderPoint: cmd.ReorderPoint, ReorderQuantity: cmd.ReorderQuantity, Supplier: cmd.Supplier}
	var events []Event
	if policy != s.Policy {
		events = append(events, ReplenishmentPolicySet{SKU: s.SKU, ReorderPoint: cmd.ReorderPoint, ReorderQuantity: cmd.ReorderQuantity, Supplier: cmd.Supplier, SetAt: cmd.At})
	}
	return append(events, s.followUps(s.SKU, s.OnHand, s.Reserved, s.Incoming, s.queue, policy, cmd.At)...), nil
}

// DecideReserveStock allocates an order line: what is available is reserved, the shortfall
// joins the back of the queue. An order asks each SKU once; a repeat changes nothing.
func DecideReserveStock(s Stock, cmd ReserveStock) ([]Event, error) {
	if err := checkID("order_id", cmd.OrderID); err != nil {
		return nil, err
	}
	if cmd.Quantity <= 0 {
		return nil, invalid("quantity", "must be > 0, got %d", cmd.Quantity)
	}
	if !s.Exists {
		return nil, fmt.Errorf("%w: %s", ErrSKUNotFound, cmd.SKU)
	}
	if s.hasAsked(cmd.OrderID) || s.released[cmd.OrderID] {
		return nil, nil
	}
	reserve := min(cmd.Quantity, max(s.Available(), 0))
	if len(s.queue) > 0 {
		reserve = 0 // earlier backorders come first
	}
	short := cmd.Quantity - reserve
	events := []Event{StockAllocated{SKU: s.SKU, OrderID: cmd.OrderID, Requested: cmd.Quantity, Reserved: reserve, Backordered: short, AllocatedAt: cmd.At}}
	queue := s.queue
	if short > 0 {
		queue = append(append([]Backorder(nil), s.queue...), Backorder{OrderID: cmd.OrderID, Quantity: short})
	}
	return append(events, s.followUps(s.SKU, s.OnHand, s.Reserved+reserve, s.Incoming, queue, s.Policy, cmd.At)...), nil
}

// DecideReleaseStock frees what a cancelled order held and hands it to the oldest backorders.
func DecideReleaseStock(s Stock, cmd ReleaseStock) ([]Event, error) {
	if !s.Exists || s.released[cmd.OrderID] {
		return nil, nil
	}
	reserved := s.reservations[cmd.OrderID]
	var backordered int64
	for _, b := range s.queue {
		if b.OrderID == cmd.OrderID {
			backordered = b.Quantity
		}
	}
	if reserved == 0 && backordered == 0 && !s.hasAsked(cmd.OrderID) {
		// Nothing was allocated yet: remember the release so a late request is refused.
		return []Event{StockReleased{SKU: s.SKU, OrderID: cmd.OrderID, ReleasedAt: cmd.At}}, nil
	}
	if reserved == 0 && backordered == 0 {
		return nil, nil
	}
	events := []Event{StockReleased{SKU: s.SKU, OrderID: cmd.OrderID, Reserved: reserved, Backordered: backordered, ReleasedAt: cmd.At}}
	queue := takeFromQueue(s.queue, cmd.OrderID, backordered)
	return append(events, s.followUps(s.SKU, s.OnHand, s.Reserved-reserved, s.Incoming, queue, s.Policy, cmd.At)...), nil
}

// DecideShipStock takes a shipped order's reserved units out of stock.
func DecideShipStock(s Stock, cmd ShipStock) ([]Event, error) {
	if cmd.Quantity <= 0 {
		return nil, invalid("quantity", "must be > 0, got %d", cmd.Quantity)
	}
	if s.shipped[cmd.OrderID] {
		return nil, nil
	}
	if s.reservations[cmd.OrderID] < cmd.Quantity {
		return nil, fmt.Errorf("%w: order %s has %d of %s reserved, ships %d", ErrNotReserved, cmd.OrderID, s.reservations[cmd.OrderID], s.SKU, cmd.Quantity)
	}
	return []Event{StockShipped{SKU: s.SKU, OrderID: cmd.OrderID, Quantity: cmd.Quantity, ShippedAt: cmd.At}}, nil
}

// DecideRestockReturn puts returned units back on hand, serving backorders first.
func DecideRestockReturn(s Stock, cmd RestockReturn) ([]Event, error) {
	if cmd.Quantity <= 0 {
		return nil, invalid("quantity", "must be > 0, got %d", cmd.Quantity)
	}
	if !s.Exists {
		return nil, fmt.Errorf("%w: %s", ErrSKUNotFound, cmd.SKU)
	}
	if s.restocked[orderReturn{cmd.OrderID, cmd.ReturnID}] {
		return nil, nil
	}
	onHand, err := AddAmounts(s.OnHand, cmd.Quantity)
	if err != nil {
		return nil, err
	}
	events := []Event{StockRestocked{SKU: s.SKU, OrderID: cmd.OrderID, ReturnID: cmd.ReturnID, Quantity: cmd.Quantity, RestockedAt: cmd.At}}
	return append(events, s.followUps(s.SKU, onHand, s.Reserved, s.Incoming, s.queue, s.Policy, cmd.At)...), nil
}

// followUps are the decisions every change of stock leads to, given the figures after it:
// available units go to the oldest backorders, then a purchase order is raised if the
// forecast (available + incoming − backordered) is below the reorder point. Raising one lifts
// the forecast to at least the reorder point, so the same shortfall never raises a second.
func (s Stock) followUps(sku string, onHand, reserved, incoming int64, queue []Backorder, policy ReplenishmentPolicy, at time.Time) []Event {
	var events []Event
	available := onHand - reserved
	var backordered int64
	for _, b := range queue {
		if available > 0 {
			fill := min(b.Quantity, available)
			events = append(events, BackorderFilled{SKU: sku, OrderID: b.OrderID, Quantity: fill, FilledAt: at})
			available -= fill
			backordered += b.Quantity - fill
			continue
		}
		backordered += b.Quantity
	}
	if !policy.IsSet() {
		return events
	}
	forecast := available + incoming - backordered
	if forecast >= policy.ReorderPoint {
		return events
	}
	quantity := max(policy.ReorderQuantity, policy.ReorderPoint-forecast)
	events = append(events, ReplenishmentRequested{
		SKU: sku, PurchaseOrderID: PurchaseOrderID(sku, s.Replenishments+1), Supplier: policy.Supplier,
		Quantity: quantity, RequestedAt: at,
	})
	return events
}

// PurchaseOrderID names the n-th purchase order raised for sku, deterministically, so a
// retried decision raises the same one: "PO-<sku>-<n>", or a hash of the SKU where that would
// be longer than an ID may be.
func PurchaseOrderID(sku string, n int64) string {
	id := "PO-" + sku + "-" + strconv.FormatInt(n, 10)
	if len(id) <= 64 {
		return id
	}
	sum := sha256.Sum256([]byte(sku))
	return "PO-" + hex.EncodeToString(sum[:8]) + "-" + strconv.FormatInt(n, 10)
}
