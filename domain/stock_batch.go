package domain

import "fmt"

// StockCommand is one of the commands the automation sends a SKU's stream on an order's
// behalf — ReserveStock, ReleaseStock, ShipStock, RestockReturn — which DecideStockCommands
// decides several at a time.
type StockCommand interface {
	// stockOrder is the order the command acts for.
	stockOrder() string
}

func (c ReserveStock) stockOrder() string  { return c.OrderID }
func (c ReleaseStock) stockOrder() string  { return c.OrderID }
func (c ShipStock) stockOrder() string     { return c.OrderID }
func (c RestockReturn) stockOrder() string { return c.OrderID }

// DecideStockCommands decides several commands on one SKU in one decision, in the order given,
// so that a popular SKU takes one append for the orders waiting on it rather than one append
// each, one after another. Each command decides what it would decide alone on the stock as the
// commands before it leave it: the first come are served first, a backorder is filled before a
// later reservation, and no more is ever reserved than is on hand. It returns the events of
// each command, in the order given; a command refused refuses them all, and the error names
// its index.
func DecideStockCommands(s Stock, cmds []StockCommand) ([][]Event, error) {
	draft := s.draftFor(cmds)
	out := make([][]Event, len(cmds))
	for i, c := range cmds {
		events, err := decideStockCommand(draft, c)
		if err != nil {
			return nil, fmt.Errorf("commands[%d]: %w", i, err)
		}
		for _, e := range events {
			draft = EvolveStock(draft, e)
		}
		out[i] = events
	}
	return out, nil
}

func decideStockCommand(s Stock, c StockCommand) ([]Event, error) {
	switch c := c.(type) {
	case ReserveStock:
		return DecideReserveStock(s, c)
	case ReleaseStock:
		return DecideReleaseStock(s, c)
	case ShipStock:
		return DecideShipStock(s, c)
	case RestockReturn:
		return DecideRestockReturn(s, c)
	}
	return nil, fmt.Errorf("%w: %T is not a stock command", ErrInvalidInput, c)
}

// draftFor is a copy of s to decide cmds on, one after another, folding each one's events in:
// EvolveStock writes to the state's maps, which s shares with the handler's cached fold and
// must keep as they are (the append may yet fail). Copying the maps whole would cost as much
// as the SKU's history for every batch, so the draft holds only what the commands of cmds read
// about their own orders, and everything else of s; what EvolveStock records meanwhile about
// other orders (a backorder filled) lands in the draft's maps and is read by no one.
//
// Every field a Decide of a StockCommand reads must be carried here: the property test
// TestStockCommandsDecidedTogetherAsOneAtATime compares the two.
func (s Stock) draftFor(cmds []StockCommand) Stock {
	d := s
	d.queue = append([]Backorder(nil), s.queue...)
	d.reservations = make(map[string]int64, len(cmds))
	d.asked = make(map[string]bool, len(cmds))
	d.released = make(map[string]bool, len(cmds))
	d.shipped = make(map[string]bool, len(cmds))
	d.restocked = map[orderReturn]bool{}
	d.received = map[string]bool{}
	d.openPOs = map[string]int64{}
	for _, c := range cmds {
		o := c.stockOrder()
		d.reservations[o] = s.reservations[o]
		d.asked[o] = s.asked[o]
		d.released[o] = s.released[o]
		d.shipped[o] = s.shipped[o]
		if r, ok := c.(RestockReturn); ok {
			key := orderReturn{r.OrderID, r.ReturnID}
			d.restocked[key] = s.restocked[key]
		}
	}
	return d
}
