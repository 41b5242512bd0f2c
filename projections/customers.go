package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// RecentOrdersLimit is how many of a customer's newest orders their profile lists.
const RecentOrdersLimit = 10

// Customer is the document of GET /v1/customers/{id}. Phone and payment preference are empty
// when the customer gave none. Once the customer's personal data is erased, Erased is set and
// name, email and phone are null in JSON. LifetimeValue and OutstandingBalance are in the base currency
// the read asked for; ByCurrency has the figures of every currency the customer has orders
// in, which are never added together.
type Customer struct {
	CustomerID         string                     `json:"customer_id"`
	Name               string                     `json:"name"`
	Email              string                     `json:"email"`
	Phone              string                     `json:"phone"`
	PaymentPreference  string                     `json:"payment_preference"`
	OrderCount         int64                      `json:"order_count"`
	LifetimeValue      Amount                     `json:"lifetime_value"`
	OutstandingBalance Amount                     `json:"outstanding_balance"`
	ByCurrency         map[string]CustomerBalance `json:"by_currency"`
	FirstOrderAt       *time.Time                 `json:"first_order_at"`
	LastOrderAt        *time.Time                 `json:"last_order_at"`
	Channels           ChannelCounts              `json:"channels"`
	RecentOrders       []RecentOrder              `json:"recent_orders"`
	Erased             bool                       `json:"erased"`
}

// MarshalJSON answers an erased customer's personal fields as null.
func (c Customer) MarshalJSON() ([]byte, error) {
	type plain Customer
	if !c.Erased {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		Name  *string `json:"name"`
		Email *string `json:"email"`
		Phone *string `json:"phone"`
	}{plain: plain(c)})
}

// CustomerBalance is a customer's figures in one currency: lifetime_value is invoiced −
// credited over their orders in it, outstanding_balance the sum of the outstanding amounts of
// their invoiced orders in it.
type CustomerBalance struct {
	LifetimeValue      Amount `json:"lifetime_value"`
	OutstandingBalance Amount `json:"outstanding_balance"`
}

// ChannelCounts counts a customer's orders per channel.
type ChannelCounts struct {
	Web   int64 `json:"web"`
	Store int64 `json:"store"`
	Phone int64 `json:"phone"`
}

// RecentOrder is one of a customer's newest orders.
type RecentOrder struct {
	OrderID  string             `json:"order_id"`
	Status   domain.OrderStatus `json:"status"`
	Currency string             `json:"currency"`
	Total    int64              `json:"total"`
	PlacedAt time.Time          `json:"placed_at"`
}

// customerRow is a row of rm_customers in memory, with the customer's balances per currency
// (rm_customer_balances) once loaded.
type customerRow struct {
	CustomerID                            string
	Name, Email, Phone, PaymentPreference string
	OrderCount                            int64
	FirstOrderAt, LastOrderAt             int64 // 0 before the first order
	WebOrders, StoreOrders, PhoneOrders   int64
	Erased                                bool
	balances                              map[string]*CustomerBalance
}

// balance returns the customer's balance in a currency, creating it at zero.
func (c *customerRow) balance(currency string) *CustomerBalance {
	if c.balances == nil {
		c.balances = map[string]*CustomerBalance{}
	}
	b, ok := c.balances[currency]
	if !ok {
		b = &CustomerBalance{}
		c.balances[currency] = b
	}
	return b
}

// customerOrderRow is what the customers projector knows of one order (rm_customer_orders).
type customerOrderRow struct {
	OrderID, CustomerID, Currency   string
	Status                          domain.OrderStatus
	Total, Credited, Paid, Refunded int64
	Invoiced                        bool
	PlacedAt                        int64
}

func (o *customerOrderRow) outstanding() int64 { return o.Total - o.Credited - o.Paid + o.Refunded }

var customersTable = table{name: "rm_customers", key: 1, columns: []string{
	"customer_id", "name", "email", "phone", "payment_preference", "order_count",
	"first_order_at", "last_order_at", "web_orders", "store_orders", "phone_orders", "erased",
}}

var customerOrdersTable = table{name: "rm_customer_orders", key: 1, columns: []string{
	"order_id", "customer_id", "status", "currency", "total", "credited", "paid", "refunded", "invoiced", "placed_at",
}}

// customerBalancesTable holds a row per customer and currency, keyed "customer_id currency"
// (an identifier holds no space) so that the key is one column, as projections verify wants.
var customerBalancesTable = table{name: "rm_customer_balances", key: 1, columns: []string{
	"balance_id", "customer_id", "currency", "lifetime_hi", "lifetime_lo", "outstanding_hi", "outstanding_lo",
}}

func balanceID(customerID, currency string) string { return customerID + " " + currency }

const customerColumns = `customer_id, name, email, phone, payment_preference, order_count,
	first_order_at, last_order_at, web_orders, store_orders, phone_orders, erased`

const customerBalanceColumns = "customer_id, currency, lifetime_hi, lifetime_lo, outstanding_hi, outstanding_lo"

func scanCustomerBalance(r *sql.Rows) (customerID, currency string, b CustomerBalance, err error) {
	err = r.Scan(&customerID, &currency, &b.LifetimeValue.hi, &b.LifetimeValue.lo, &b.OutstandingBalance.hi, &b.OutstandingBalance.lo)
	return customerID, currency, b, err
}

func scanCustomer(r *sql.Rows) (*customerRow, error) {
	var (
		c           customerRow
		first, last sql.NullInt64
		erased      int64
	)
	err := r.Scan(&c.CustomerID, &c.Name, &c.Email, &c.Phone, &c.PaymentPreference, &c.OrderCount,
		&first, &last, &c.WebOrders, &c.StoreOrders, &c.PhoneOrders, &erased)
	c.FirstOrderAt, c.LastOrderAt, c.Erased = first.Int64, last.Int64, erased == 1
	return &c, err
}

func (c *customerRow) values() []any {
	return []any{c.CustomerID, c.Name, c.Email, c.Phone, c.PaymentPreference, c.OrderCount,
		nullTime(c.FirstOrderAt), nullTime(c.LastOrderAt), c.WebOrders, c.StoreOrders, c.PhoneOrders, boolInt(c.Erased)}
}

// document is the customer's profile, its figures in the base currency.
func (c *customerRow) document(base string, recent []RecentOrder) Customer {
	doc := Customer{
		CustomerID: c.CustomerID, Name: c.Name, Email: c.Email,
		Phone: c.Phone, PaymentPreference: c.PaymentPreference, OrderCount: c.OrderCount,
		ByCurrency:   make(map[string]CustomerBalance, len(c.balances)),
		Channels:     ChannelCounts{Web: c.WebOrders, Store: c.StoreOrders, Phone: c.PhoneOrders},
		RecentOrders: recent, Erased: c.Erased,
	}
	for currency, b := range c.balances {
		doc.ByCurrency[currency] = *b
	}
	if b, ok := c.balances[base]; ok {
		doc.LifetimeValue, doc.OutstandingBalance = b.LifetimeValue, b.OutstandingBalance
	}
	if doc.RecentOrders == nil {
		doc.RecentOrders = []RecentOrder{}
	}
	if c.FirstOrderAt != 0 {
		first, last := microsTime(c.FirstOrderAt), microsTime(c.LastOrderAt)
		doc.FirstOrderAt, doc.LastOrderAt = &first, &last
	}
	return doc
}

const customerOrderColumns = `order_id, customer_id, status, currency, total, credited, paid, refunded, invoiced, placed_at`

func scanCustomerOrder(r *sql.Rows) (*customerOrderRow, error) {
	var (
		o        customerOrderRow
		invoiced int64
	)
	err := r.Scan(&o.OrderID, &o.CustomerID, &o.Status, &o.Currency, &o.Total, &o.Credited, &o.Paid, &o.Refunded, &invoiced, &o.PlacedAt)
	o.Invoiced = invoiced == 1
	return &o, err
}

func (o *customerOrderRow) values() []any {
	return []any{o.OrderID, o.CustomerID, o.Status, o.Currency, o.Total, o.Credited, o.Paid, o.Refunded, boolInt(o.Invoiced), o.PlacedAt}
}

// customersProjector keeps customer profiles (rm_customers) and what they need of each order
// (rm_customer_orders).
type customersProjector struct{}

var customerEventTypes = typesOf(
	domain.CustomerRegistered{}, domain.CustomerDetailsChanged{}, domain.CustomerErased{}, domain.OrderPlaced{}, domain.OrderInvoiced{},
	domain.CreditNoteIssued{}, domain.PaymentReceived{}, domain.RefundIssued{}, domain.OrderBackordered{},
	domain.OrderConfirmed{}, domain.OrderShipped{}, domain.OrderDelivered{}, domain.OrderCompleted{},
	domain.OrderCancelled{},
)

func (customersProjector) name() string { return "customers" }
func (customersProjector) tables() []string {
	return []string{"rm_customers", "rm_customer_orders", "rm_customer_balances"}
}
func (customersProjector) handles(t string) bool { return customerEventTypes[t] }
func (customersProjector) newBatch(d dialect) batch {
	return &customersBatch{d: d, customers: map[string]*customerRow{}, orders: map[string]*customerOrderRow{}}
}

type customersBatch struct {
	d                           dialect
	customers                   map[string]*customerRow
	orders                      map[string]*customerOrderRow
	dirtyCustomers, dirtyOrders keySet
	// dirtyBalances are the balance_ids whose rows changed.
	dirtyBalances keySet
}

func (b *customersBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var orderIDs, customerIDs keySet
	addCustomer := func(id string) {
		if b.customers[id] == nil {
			customerIDs.add(id)
		}
	}
	for _, e := range events {
		switch e := e.data.(type) {
		case domain.CustomerRegistered:
			addCustomer(e.CustomerID)
		case domain.CustomerDetailsChanged:
			addCustomer(e.CustomerID)
		case domain.CustomerErased:
			addCustomer(e.CustomerID)
		case domain.OrderPlaced:
			addCustomer(e.CustomerID)
		default:
			if o := b.orders[orderIDOf(e)]; o != nil {
				addCustomer(o.CustomerID)
			} else {
				orderIDs.add(orderIDOf(e))
			}
		}
	}
	err := selectIn(ctx, q, b.d, "SELECT "+customerOrderColumns+" FROM rm_customer_orders WHERE order_id IN ({keys})", orderIDs.keys, func(r *sql.Rows) error {
		o, err := scanCustomerOrder(r)
		if err == nil {
			b.orders[o.OrderID] = o
			addCustomer(o.CustomerID)
		}
		return err
	})
	if err != nil {
		return err
	}
	err = selectIn(ctx, q, b.d, "SELECT "+customerColumns+" FROM rm_customers WHERE customer_id IN ({keys})", customerIDs.keys, func(r *sql.Rows) error {
		c, err := scanCustomer(r)
		if err == nil {
			b.customers[c.CustomerID] = c
		}
		return err
	})
	if err != nil {
		return err
	}
	return selectIn(ctx, q, b.d, "SELECT "+customerBalanceColumns+" FROM rm_customer_balances WHERE customer_id IN ({keys})", customerIDs.keys, func(r *sql.Rows) error {
		id, currency, bal, err := scanCustomerBalance(r)
		if c := b.customers[id]; err == nil && c != nil {
			*c.balance(currency) = bal
		}
		return err
	})
}

func (b *customersBatch) customer(id string) (*customerRow, error) {
	c, ok := b.customers[id]
	if !ok {
		return nil, fmt.Errorf("customer %s was never registered", id)
	}
	b.dirtyCustomers.add(id)
	return c, nil
}

func (b *customersBatch) apply(env envelope) error {
	switch e := env.data.(type) {
	case domain.CustomerRegistered:
		if _, ok := b.customers[e.CustomerID]; ok {
			return fmt.Errorf("customer %s is registered a second time", e.CustomerID)
		}
		b.customers[e.CustomerID] = &customerRow{
			CustomerID: e.CustomerID, Name: e.Name, Email: e.Email, Phone: e.Phone,
			PaymentPreference: e.PaymentPreference,
		}
		b.dirtyCustomers.add(e.CustomerID)
		return nil
	case domain.CustomerDetailsChanged:
		c, err := b.customer(e.CustomerID)
		if err != nil {
			return err
		}
		setIf(&c.Name, e.Name)
		setIf(&c.Email, e.Email)
		setIf(&c.Phone, e.Phone)
		setIf(&c.PaymentPreference, e.PaymentPreference)
		return nil
	case domain.CustomerErased:
		// The profile's copy of the personal data goes with the key: a rebuild finds the
		// sealed fields unopenable and leaves them empty, so live and rebuilt rows agree.
		c, err := b.customer(e.CustomerID)
		if err != nil {
			return err
		}
		c.Name, c.Email, c.Phone, c.Erased = "", "", "", true
		return nil
	case domain.OrderPlaced:
		c, err := b.customer(e.CustomerID)
		if err != nil {
			return fmt.Errorf("order %s: %w", e.OrderID, err)
		}
		if _, exists := b.orders[e.OrderID]; exists {
			return fmt.Errorf("order %s is placed a second time", e.OrderID)
		}
		placed := e.PlacedAt.UnixMicro()
		b.orders[e.OrderID] = &customerOrderRow{OrderID: e.OrderID, CustomerID: e.CustomerID, Status: domain.StatusPending, Currency: e.Currency, Total: e.Total, PlacedAt: placed}
		b.dirtyOrders.add(e.OrderID)
		c.OrderCount++
		if c.FirstOrderAt == 0 || placed < c.FirstOrderAt {
			c.FirstOrderAt = placed
		}
		if placed > c.LastOrderAt {
			c.LastOrderAt = placed
		}
		switch e.Channel {
		case "web":
			c.WebOrders++
		case "store":
			c.StoreOrders++
		case "phone":
			c.PhoneOrders++
		}
		return nil
	}
	id := orderIDOf(env.data)
	o, ok := b.orders[id]
	if !ok {
		return fmt.Errorf("order %s: %w", id, errNotPlaced)
	}
	c, err := b.customer(o.CustomerID)
	if err != nil {
		return err
	}
	b.dirtyOrders.add(id)
	// Money moves only within the order's currency; an Amount never wraps.
	money := func() *CustomerBalance {
		b.dirtyBalances.add(balanceID(c.CustomerID, o.Currency))
		return c.balance(o.Currency)
	}
	switch e := env.data.(type) {
	case domain.OrderInvoiced:
		bal := money()
		if !o.Invoiced {
			o.Invoiced = true
			bal.OutstandingBalance = bal.OutstandingBalance.Add(o.outstanding())
		}
		bal.LifetimeValue = bal.LifetimeValue.Add(e.Total)
	case domain.CreditNoteIssued:
		bal := money()
		o.Credited += e.Total
		bal.LifetimeValue = bal.LifetimeValue.Sub(e.Total)
		if o.Invoiced {
			bal.OutstandingBalance = bal.OutstandingBalance.Sub(e.Total)
		}
	case domain.PaymentReceived:
		bal := money()
		o.Paid += e.Amount
		if o.Invoiced {
			bal.OutstandingBalance = bal.OutstandingBalance.Sub(e.Amount)
		}
	case domain.RefundIssued:
		bal := money()
		o.Refunded += e.Amount
		if o.Invoiced {
			bal.OutstandingBalance = bal.OutstandingBalance.Add(e.Amount)
		}
	case domain.OrderBackordered:
		o.Status = domain.StatusBackordered
	case domain.OrderConfirmed:
		o.Status = domain.StatusConfirmed
	case domain.OrderShipped:
		o.Status = domain.StatusShipped
	case domain.OrderDelivered:
		o.Status = domain.StatusDelivered
	case domain.OrderCompleted:
		o.Status = domain.StatusCompleted
	case domain.OrderCancelled:
		o.Status = domain.StatusCancelled
	}
	return nil
}

func setIf(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func (b *customersBatch) written() int {
	b.dirtyCustomers, b.dirtyOrders, b.dirtyBalances = keySet{}, keySet{}, keySet{}
	return len(b.customers) + len(b.orders)
}

func (b *customersBatch) flush(ctx context.Context, tx execer) error {
	customers := make([][]any, 0, len(b.dirtyCustomers.keys))
	for _, id := range b.dirtyCustomers.keys {
		customers = append(customers, b.customers[id].values())
	}
	if err := customersTable.upsert(ctx, tx, b.d, customers); err != nil {
		return err
	}
	orders := make([][]any, 0, len(b.dirtyOrders.keys))
	for _, id := range b.dirtyOrders.keys {
		orders = append(orders, b.orders[id].values())
	}
	if err := customerOrdersTable.upsert(ctx, tx, b.d, orders); err != nil {
		return err
	}
	balances := make([][]any, 0, len(b.dirtyBalances.keys))
	for _, key := range b.dirtyBalances.keys {
		customerID, currency, _ := strings.Cut(key, " ")
		bal := b.customers[customerID].balances[currency]
		balances = append(balances, []any{key, customerID, currency,
			bal.LifetimeValue.hi, bal.LifetimeValue.lo, bal.OutstandingBalance.hi, bal.OutstandingBalance.lo})
	}
	return customerBalancesTable.upsert(ctx, tx, b.d, balances)
}

// Customer returns a customer's profile, its figures in the base currency, or ErrNotFound.
func (s *ReadStore) Customer(ctx context.Context, id, base string) (Customer, error) {
	var docs []Customer
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		docs, err = s.customers(ctx, tx, base, "SELECT "+customerColumns+" FROM rm_customers WHERE customer_id = ?", id)
		return err
	})
	if err != nil {
		return Customer{}, err
	}
	if len(docs) == 0 {
		return Customer{}, fmt.Errorf("%w: customer %s", ErrNotFound, id)
	}
	return docs[0], nil
}

// CustomerKey is a customer's place in the listing by lifetime value.
type CustomerKey struct {
	LifetimeValue Amount
	CustomerID    string
}

// CustomersByLifetimeValue lists customers, highest lifetime value in the base currency first
// (those without orders in it count as 0; ties by customer_id), limit to a page, after the key
// of the previous page's last customer when after is set. next is the key to continue after,
// nil on the last page.
func (s *ReadStore) CustomersByLifetimeValue(ctx context.Context, base string, limit int, after *CustomerKey) (docs []Customer, next *CustomerKey, err error) {
	q := `SELECT c.customer_id, c.name, c.email, c.phone, c.payment_preference, c.order_count,
			c.first_order_at, c.last_order_at, c.web_orders, c.store_orders, c.phone_orders, c.erased
			FROM rm_customers c LEFT JOIN rm_customer_balances b ON b.customer_id = c.customer_id AND b.currency = ?`
	args := []any{base}
	if after != nil {
		// Descending by value, ascending by identifier: one comparison per column.
		q += ` WHERE COALESCE(b.lifetime_hi, 0) < ?
			OR (COALESCE(b.lifetime_hi, 0) = ? AND COALESCE(b.lifetime_lo, 0) < ?)
			OR (COALESCE(b.lifetime_hi, 0) = ? AND COALESCE(b.lifetime_lo, 0) = ? AND c.customer_id > ?)`
		hi, lo := after.LifetimeValue.hi, after.LifetimeValue.lo
		args = append(args, hi, hi, lo, hi, lo, after.CustomerID)
	}
	q += ` ORDER BY COALESCE(b.lifetime_hi, 0) DESC, COALESCE(b.lifetime_lo, 0) DESC, c.customer_id LIMIT ?`
	args = append(args, limit+1)
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		docs, err = s.customers(ctx, tx, base, q, args...)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(docs) > limit {
		docs = docs[:limit]
		last := docs[len(docs)-1]
		next = &CustomerKey{LifetimeValue: last.LifetimeValue, CustomerID: last.CustomerID}
	}
	return docs, next, nil
}

// customers runs a query for customer rows and adds each one's balances and recent orders.
func (s *ReadStore) customers(ctx context.Context, tx *sql.Tx, base, query string, args ...any) ([]Customer, error) {
	var rows []*customerRow
	err := queryRows(ctx, tx, s.dialect, query, args, func(r *sql.Rows) error {
		c, err := scanCustomer(r)
		rows = append(rows, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	docs := make([]Customer, 0, len(rows))
	if len(rows) == 0 {
		return docs, nil
	}
	ids := make([]string, len(rows))
	byID := make(map[string]*customerRow, len(rows))
	for i, c := range rows {
		ids[i] = c.CustomerID
		byID[c.CustomerID] = c
	}
	err = selectIn(ctx, tx, s.dialect, "SELECT "+customerBalanceColumns+" FROM rm_customer_balances WHERE customer_id IN ({keys})", ids, func(r *sql.Rows) error {
		id, currency, bal, err := scanCustomerBalance(r)
		if c := byID[id]; err == nil && c != nil {
			*c.balance(currency) = bal
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	recent := map[string][]RecentOrder{}
	scanRecent := func(r *sql.Rows) error {
		var (
			customerID string
			o          RecentOrder
			placed     int64
		)
		if err := r.Scan(&customerID, &o.OrderID, &o.Status, &o.Currency, &o.Total, &placed); err != nil {
			return err
		}
		o.PlacedAt = microsTime(placed)
		recent[customerID] = append(recent[customerID], o)
		return nil
	}
	if len(ids) == 1 {
		// One customer (GET /v1/customers/{id}): the index hands over the newest orders and
		// the scan stops after them, however many orders the customer has placed.
		err = queryRows(ctx, tx, s.dialect, fmt.Sprintf(`SELECT customer_id, order_id, status, currency, total, placed_at
			FROM rm_customer_orders WHERE customer_id = ? ORDER BY placed_at DESC, order_id DESC LIMIT %d`, RecentOrdersLimit),
			[]any{ids[0]}, scanRecent)
	} else {
		err = selectIn(ctx, tx, s.dialect, fmt.Sprintf(`SELECT customer_id, order_id, status, currency, total, placed_at FROM (
			SELECT customer_id, order_id, status, currency, total, placed_at,
				ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY placed_at DESC, order_id DESC) AS n
			FROM rm_customer_orders WHERE customer_id IN ({keys})) recent
		WHERE n <= %d ORDER BY customer_id, placed_at DESC, order_id DESC`, RecentOrdersLimit), ids, scanRecent)
	}
	if err != nil {
		return nil, err
	}
	for _, c := range rows {
		docs = append(docs, c.document(base, recent[c.CustomerID]))
	}
	return docs, nil
}

// CustomerOrderIDs lists the IDs of every order a customer placed, oldest first.
func (s *ReadStore) CustomerOrderIDs(ctx context.Context, customerID string) ([]string, error) {
	var ids []string
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		return queryRows(ctx, tx, s.dialect, `SELECT order_id FROM rm_customer_orders WHERE customer_id = ? ORDER BY placed_at, order_id`,
			[]any{customerID}, func(r *sql.Rows) error {
				var id string
				err := r.Scan(&id)
				ids = append(ids, id)
				return err
			})
	})
	return ids, err
}
