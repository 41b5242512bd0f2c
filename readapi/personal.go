package readapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/privacy"
)

// PersonalData answers GET /v1/customers/{id}/personal-data (right of access, GDPR Art. 15):
// every piece of personal data the log holds about the customer, with the event it came from
// and how it is stored, and the read models that keep a copy.
type PersonalData struct {
	CustomerID string         `json:"customer_id"`
	Erased     bool           `json:"erased"`
	Items      []privacy.Held `json:"items"`
	Copies     []Copy         `json:"copies"`
}

// Copy is a read model that holds a copy of some of the customer's personal data.
type Copy struct {
	Table  string   `json:"table"`
	Fields []string `json:"fields"`
	Route  string   `json:"route"`
}

// GET /v1/customers/{id}/personal-data
func (a *API) personalData(ctx context.Context, r *http.Request, _ query) (any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	store := privacy.Of(a.events)
	if store == nil {
		return nil, fmt.Errorf("personal data: this server reads the event store without its key store")
	}
	stream := domain.CustomerStream(id)
	first, err := a.events.ReadStream(ctx, stream, 0, 1)
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, fmt.Errorf("%w: %s", domain.ErrCustomerNotFound, id)
	}
	doc := PersonalData{CustomerID: id, Copies: []Copy{}}
	if doc.Items, err = store.HeldIn(ctx, stream, 0); err != nil {
		return nil, err
	}
	if doc.Erased, err = store.Keys().Erased(ctx, id); err != nil {
		return nil, err
	}
	orders, err := a.read.CustomerOrderIDs(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, order := range orders {
		// An order's personal data (its shipping address) is in the placement, its first event.
		held, err := store.HeldIn(ctx, domain.OrderStream(order), 1)
		if err != nil {
			return nil, err
		}
		doc.Items = append(doc.Items, held...)
	}
	if !doc.Erased {
		profile, err := a.read.Customer(ctx, id, a.baseCurrency)
		if err == nil && (profile.Name != "" || profile.Email != "" || profile.Phone != "") {
			doc.Copies = append(doc.Copies, Copy{Table: "rm_customers", Fields: []string{"name", "email", "phone"}, Route: "/v1/customers/" + id})
		}
	}
	return doc, nil
}
