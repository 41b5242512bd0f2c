package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// StockLevel is the document of GET /v1/inventory/{sku}. The replenishment fields are null
// for a SKU without a policy, and such a SKU is never low on stock.
type StockLevel struct {
	SKU             string  `json:"sku"`
	OnHand          int64   `json:"on_hand"`
	Reserved        int64   `json:"reserved"`
	Available       int64   `json:"available"`
	Backordered     int64   `json:"backordered"`
	Incoming        int64   `json:"incoming"`
	ReorderPoint    *int64  `json:"reorder_point"`
	ReorderQuantity *int64  `json:"reorder_quantity"`
	Supplier        *string `json:"supplier"`
	LowStock        bool    `json:"low_stock"`
}

// PurchaseOrder is an item of GET /v1/purchase-orders.
type PurchaseOrder struct {
	PurchaseOrderID string     `json:"purchase_order_id"`
	SKU             string     `json:"sku"`
	Supplier        string     `json:"supplier"`
	Quantity        int64      `json:"quantity"`
	Status          string     `json:"status"`
	RaisedAt        time.Time  `json:"raised_at"`
	ReceivedAt      *time.Time `json:"received_at"`
}

// Purchase order statuses.
const (
	PurchaseOrderOpen     = "open"
	PurchaseOrderReceived = "received"
)

// stockRow is a row of rm_stock in memory.
type stockRow struct {
	SKU                                     string
	OnHand, Reserved, Backordered, Incoming int64
	HasPolicy                               bool
	ReorderPoint, ReorderQuantity           int64
	Supplier                                string
}

func (s *stockRow) lowStock() bool { return s.HasPolicy && s.OnHand-s.Reserved <= s.ReorderPoint }

func (s *stockRow) document() StockLevel {
	doc := StockLevel{
		SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Available: s.OnHand - s.Reserved,
		Backordered: s.Backordered, Incoming: s.Incoming, LowStock: s.lowStock(),
	}
	if s.HasPolicy {
		point, quantity, supplier := s.ReorderPoint, s.ReorderQuantity, s.Supplier
		doc.ReorderPoint, doc.ReorderQuantity, doc.Supplier = &point, &quantity, &supplier
	}
	return doc
}

// StockLevelFromDomain is the stock level of a SKU folded from its stream, the same as the
// projection shows once it has seen those events; time travel (?as_of=) uses it.
func StockLevelFromDomain(s domain.Stock) StockLevel {
	row := stockRow{
		SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Backordered: s.Backordered(), Incoming: s.Incoming,
		HasPolicy: s.Policy.IsSet(), ReorderPoint: s.Policy.ReorderPoint, ReorderQuantity: s.Policy.ReorderQuantity,
		Supplier: s.Policy.Supplier,
	}
	return row.document()
}

var stockTable = table{name: "rm_stock", key: 1, columns: []string{
	"sku", "on_hand", "reserved", "backordered", "incoming", "has_policy", "reorder_point", "reorder_quantity", "supplier", "low_stock",
}}

const stockColumns = `sku, on_hand, reserved, backordered, incoming, has_policy, reorder_point, reorder_quantity, supplier`

func scanStock(r *sql.Rows) (*stockRow, error) {
	var (
		s         stockRow
		hasPolicy int64
	)
	err := r.Scan(&s.SKU, &s.OnHand, &s.Reserved, &s.Backordered, &s.Incoming, &hasPolicy, &s.ReorderPoint, &s.ReorderQuantity, &s.Supplier)
	s.HasPolicy = hasPolicy == 1
	return &s, err
}

func (s *stockRow) values() []any {
	return []any{s.SKU, s.OnHand, s.Reserved, s.Backordered, s.Incoming, boolInt(s.HasPolicy),
		s.ReorderPoint, s.ReorderQuantity, s.Supplier, boolInt(s.lowStock())}
}

// replenishmentRow is a purchase order as its SKU's stream sees it: units still incoming.
type replenishmentRow struct {
	PurchaseOrderID, SKU string
	Incoming             int64
}

var replenishmentsTable = table{name: "rm_stock_replenishments", key: 1, columns: []string{"purchase_order_id", "sku", "incoming"}}

// purchaseOrderRow is a row of rm_purchase_orders in memory.
type purchaseOrderRow struct {
	PurchaseOrderID, SKU, Supplier, Status string
	Quantity, RaisedAt, ReceivedAt         int64
}

func (p *purchaseOrderRow) document() PurchaseOrder {
	doc := PurchaseOrder{
		PurchaseOrderID: p.PurchaseOrderID, SKU: p.SKU, Supplier: p.Supplier, Quantity: p.Quantity,
		Status: p.Status, RaisedAt: microsTime(p.RaisedAt),
	}
	if p.ReceivedAt != 0 {
		t := microsTime(p.ReceivedAt)
		doc.ReceivedAt = &t
	}
	return doc
}

var purchaseOrdersTable = table{name: "rm_purchase_orders", key: 1, columns: []string{
	"purchase_order_id", "sku", "supplier", "quantity", "status", "raised_at", "received_at",
}}

const purchaseOrderColumns = `purchase_order_id, sku, supplier, quantity, status, raised_at, received_at`

func scanPurchaseOrder(r *sql.Rows) (*purchaseOrderRow, error) {
	var (
		p        purchaseOrderRow
		received sql.NullInt64
	)
	err := r.Scan(&p.PurchaseOrderID, &p.SKU, &p.Supplier, &p.Quantity, &p.Status, &p.RaisedAt, &received)
	p.ReceivedAt = received.Int64
	return &p, err
}

func (p *purchaseOrderRow) values() []any {
	return []any{p.PurchaseOrderID, p.SKU, p.Supplier, p.Quantity, p.Status, p.RaisedAt, nullTime(p.ReceivedAt)}
}

// inventoryProjector keeps stock levels (rm_stock, with rm_stock_replenishments for what is
// incoming) and purchase orders (rm_purchase_orders).
type inventoryProjector struct{}

var inventoryEventTypes = typesOf(
	domain.StockReceived{}, domain.StockAdjusted{}, domain.ReplenishmentPolicySet{}, domain.StockAllocated{},
	domain.BackorderFilled{}, domain.StockReleased{}, domain.StockShipped{}, domain.StockRestocked{},
	domain.ReplenishmentRequested{}, domain.PurchaseOrderRaised{}, domain.PurchaseOrderReceived{},
)

func (inventoryProjector) name() string { return "inventory" }
func (inventoryProjector) tables() []string {
	return []string{"rm_stock", "rm_stock_replenishments", "rm_purchase_orders"}
}
func (inventoryProjector) handles(t string) bool { return inventoryEventTypes[t] }
func (inventoryProjector) newBatch(d dialect) batch {
	return &inventoryBatch{d: d, stock: map[string]*stockRow{}, replenishments: map[string]*replenishmentRow{}, purchaseOrders: map[string]*purchaseOrderRow{}}
}

type inventoryBatch struct {
	d                                         dialect
	stock                                     map[string]*stockRow
	replenishments                            map[string]*replenishmentRow
	purchaseOrders                            map[string]*purchaseOrderRow
	dirtyStock, dirtyReplenishments, dirtyPOs keySet
}

// skuOf returns the SKU a stock stream event is about.
func skuOf(e domain.Event) string {
	switch e := e.(type) {
	case domain.StockReceived:
		return e.SKU
	case domain.StockAdjusted:
		return e.SKU
	case domain.ReplenishmentPolicySet:
		return e.SKU
	case domain.StockAllocated:
		return e.SKU
	case domain.BackorderFilled:
		return e.SKU
	case domain.StockReleased:
		return e.SKU
	case domain.StockShipped:
		return e.SKU
	case domain.StockRestocked:
		return e.SKU
	case domain.ReplenishmentRequested:
		return e.SKU
	}
	return ""
}

func (b *inventoryBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var skus, received, purchaseOrders keySet
	addSKU := func(sku string) {
		if b.stock[sku] == nil {
			skus.add(sku)
		}
	}
	for _, e := range events {
		switch e := e.data.(type) {
		case domain.PurchaseOrderRaised:
		case domain.PurchaseOrderReceived:
			if b.purchaseOrders[e.PurchaseOrderID] == nil {
				purchaseOrders.add(e.PurchaseOrderID)
			}
		case domain.StockReceived:
			addSKU(e.SKU)
			if e.PurchaseOrderID != "" && b.replenishments[e.PurchaseOrderID] == nil {
				received.add(e.PurchaseOrderID)
			}
		default:
			addSKU(skuOf(e))
		}
	}
	err := selectIn(ctx, q, b.d, "SELECT "+stockColumns+" FROM rm_stock WHERE sku IN ({keys})", skus.keys, func(r *sql.Rows) error {
		s, err := scanStock(r)
		b.stock[s.SKU] = s
		return err
	})
	if err != nil {
		return err
	}
	err = selectIn(ctx, q, b.d, "SELECT purchase_order_id, sku, incoming FROM rm_stock_replenishments WHERE purchase_order_id IN ({keys})", received.keys, func(r *sql.Rows) error {
		var rep replenishmentRow
		err := r.Scan(&rep.PurchaseOrderID, &rep.SKU, &rep.Incoming)
		b.replenishments[rep.PurchaseOrderID] = &rep
		return err
	})
	if err != nil {
		return err
	}
	return selectIn(ctx, q, b.d, "SELECT "+purchaseOrderColumns+" FROM rm_purchase_orders WHERE purchase_order_id IN ({keys})", purchaseOrders.keys, func(r *sql.Rows) error {
		p, err := scanPurchaseOrder(r)
		b.purchaseOrders[p.PurchaseOrderID] = p
		return err
	})
}

// apply mirrors domain.EvolveStock for the figures a stock level shows.
func (b *inventoryBatch) apply(env envelope) error {
	switch e := env.data.(type) {
	case domain.PurchaseOrderRaised:
		if _, exists := b.purchaseOrders[e.PurchaseOrderID]; exists {
			return fmt.Errorf("purchase order %s is raised a second time", e.PurchaseOrderID)
		}
		b.purchaseOrders[e.PurchaseOrderID] = &purchaseOrderRow{
			PurchaseOrderID: e.PurchaseOrderID, SKU: e.SKU, Supplier: e.Supplier, Quantity: e.Quantity,
			Status: PurchaseOrderOpen, RaisedAt: e.RaisedAt.UnixMicro(),
		}
		b.dirtyPOs.add(e.PurchaseOrderID)
		return nil
	case domain.PurchaseOrderReceived:
		p, ok := b.purchaseOrders[e.PurchaseOrderID]
		if !ok {
			return fmt.Errorf("purchase order %s was never raised", e.PurchaseOrderID)
		}
		p.Status, p.ReceivedAt = PurchaseOrderReceived, e.ReceivedAt.UnixMicro()
		b.dirtyPOs.add(e.PurchaseOrderID)
		return nil
	case domain.StockReceived:
		if _, ok := b.stock[e.SKU]; !ok {
			b.stock[e.SKU] = &stockRow{SKU: e.SKU}
		}
	}
	sku := skuOf(env.data)
	s, ok := b.stock[sku]
	if !ok {
		return fmt.Errorf("SKU %s has never received stock", sku)
	}
	b.dirtyStock.add(sku)
	switch e := env.data.(type) {
	case domain.StockReceived:
		s.OnHand += e.Quantity
		if rep, ok := b.replenishments[e.PurchaseOrderID]; ok && e.PurchaseOrderID != "" {
			s.Incoming -= rep.Incoming
			rep.Incoming = 0
			b.dirtyReplenishments.add(rep.PurchaseOrderID)
		}
	case domain.StockAdjusted:
		s.OnHand += e.Delta
	case domain.ReplenishmentPolicySet:
		s.HasPolicy, s.ReorderPoint, s.ReorderQuantity, s.Supplier = true, e.ReorderPoint, e.ReorderQuantity, e.Supplier
	case domain.StockAllocated:
		s.Reserved += max(e.Reserved, 0)
		s.Backordered += max(e.Backordered, 0)
	case domain.BackorderFilled:
		s.Reserved += e.Quantity
		s.Backordered -= e.Quantity
	case domain.StockReleased:
		s.Reserved -= e.Reserved
		s.Backordered -= e.Backordered
	case domain.StockShipped:
		s.OnHand -= e.Quantity
		s.Reserved -= e.Quantity
	case domain.StockRestocked:
		s.OnHand += e.Quantity
	case domain.ReplenishmentRequested:
		s.Incoming += e.Quantity
		b.replenishments[e.PurchaseOrderID] = &replenishmentRow{PurchaseOrderID: e.PurchaseOrderID, SKU: e.SKU, Incoming: e.Quantity}
		b.dirtyReplenishments.add(e.PurchaseOrderID)
	}
	return nil
}

func (b *inventoryBatch) written() int {
	b.dirtyStock, b.dirtyReplenishments, b.dirtyPOs = keySet{}, keySet{}, keySet{}
	return len(b.stock) + len(b.replenishments) + len(b.purchaseOrders)
}

func (b *inventoryBatch) flush(ctx context.Context, tx execer) error {
	stock := make([][]any, 0, len(b.dirtyStock.keys))
	for _, sku := range b.dirtyStock.keys {
		stock = append(stock, b.stock[sku].values())
	}
	if err := stockTable.upsert(ctx, tx, b.d, stock); err != nil {
		return err
	}
	reps := make([][]any, 0, len(b.dirtyReplenishments.keys))
	for _, id := range b.dirtyReplenishments.keys {
		r := b.replenishments[id]
		reps = append(reps, []any{r.PurchaseOrderID, r.SKU, r.Incoming})
	}
	if err := replenishmentsTable.upsert(ctx, tx, b.d, reps); err != nil {
		return err
	}
	pos := make([][]any, 0, len(b.dirtyPOs.keys))
	for _, id := range b.dirtyPOs.keys {
		pos = append(pos, b.purchaseOrders[id].values())
	}
	return purchaseOrdersTable.upsert(ctx, tx, b.d, pos)
}

// StockLevel returns one SKU's stock level, or ErrNotFound.
func (s *ReadStore) StockLevel(ctx context.Context, sku string) (StockLevel, error) {
	levels, err := s.stockLevels(ctx, "SELECT "+stockColumns+" FROM rm_stock WHERE sku = ?", sku)
	if err != nil {
		return StockLevel{}, err
	}
	if len(levels) == 0 {
		return StockLevel{}, fmt.Errorf("%w: SKU %s", ErrNotFound, sku)
	}
	return levels[0], nil
}

// StockFilter selects stock levels: LowStock, when set, keeps only the SKUs that are (or are
// not) low on stock; AfterSKU continues a listing after that SKU; Limit caps the page (0: no cap).
type StockFilter struct {
	LowStock *bool
	AfterSKU string
	Limit    int
}

// StockLevels lists stock levels by SKU. next is the SKU to continue after, nil on the last page.
func (s *ReadStore) StockLevels(ctx context.Context, f StockFilter) (items []StockLevel, next *string, err error) {
	var (
		where []string
		args  []any
	)
	if f.LowStock != nil {
		where, args = append(where, "low_stock = ?"), append(args, boolInt(*f.LowStock))
	}
	if f.AfterSKU != "" {
		where, args = append(where, "sku > ?"), append(args, f.AfterSKU)
	}
	q := "SELECT " + stockColumns + " FROM rm_stock"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY sku"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit+1)
	}
	items, err = s.stockLevels(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	if f.Limit > 0 && len(items) > f.Limit {
		items = items[:f.Limit]
		last := items[len(items)-1].SKU
		next = &last
	}
	return items, next, nil
}

func (s *ReadStore) stockLevels(ctx context.Context, query string, args ...any) ([]StockLevel, error) {
	levels := []StockLevel{}
	err := queryRows(ctx, s.reads, s.dialect, query, args, func(r *sql.Rows) error {
		row, err := scanStock(r)
		levels = append(levels, row.document())
		return err
	})
	return levels, err
}

// PurchaseOrderFilter selects purchase orders; empty fields select all. After continues a
// listing after that key; Limit caps the page (0: no cap).
type PurchaseOrderFilter struct {
	SKU    string
	Status string
	After  *PurchaseOrderKey
	Limit  int
}

// PurchaseOrderKey is a purchase order's place in the listing, newest raised first.
type PurchaseOrderKey struct {
	RaisedAt        time.Time
	PurchaseOrderID string
}

// PurchaseOrders lists purchase orders, most recently raised first. next is the key to continue
// after, nil on the last page.
func (s *ReadStore) PurchaseOrders(ctx context.Context, f PurchaseOrderFilter) (items []PurchaseOrder, next *PurchaseOrderKey, err error) {
	var (
		where []string
		args  []any
	)
	if f.SKU != "" {
		where, args = append(where, "sku = ?"), append(args, f.SKU)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.After != nil {
		where = append(where, "(raised_at, purchase_order_id) < (?, ?)")
		args = append(args, f.After.RaisedAt.UnixMicro(), f.After.PurchaseOrderID)
	}
	q := "SELECT " + purchaseOrderColumns + " FROM rm_purchase_orders"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY raised_at DESC, purchase_order_id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit+1)
	}
	items = []PurchaseOrder{}
	err = queryRows(ctx, s.reads, s.dialect, q, args, func(r *sql.Rows) error {
		p, err := scanPurchaseOrder(r)
		items = append(items, p.document())
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if f.Limit > 0 && len(items) > f.Limit {
		items = items[:f.Limit]
		last := items[len(items)-1]
		next = &PurchaseOrderKey{RaisedAt: last.RaisedAt, PurchaseOrderID: last.PurchaseOrderID}
	}
	return items, next, nil
}
