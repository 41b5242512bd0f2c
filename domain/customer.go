package domain

import (
	"fmt"
	"strings"
	"time"
)

// Payment preferences a customer may state.
var paymentPreferences = map[string]bool{"card": true, "invoice": true, "cash": true, "bank_transfer": true}

// ValidPaymentPreference reports whether p is one of card, invoice, cash, bank_transfer.
func ValidPaymentPreference(p string) bool { return paymentPreferences[p] }

// Customer is the folded state of a customer stream.
type Customer struct {
	ID                string
	Name              string
	Email             string
	Phone             string
	PaymentPreference string
	Registered        bool
	// Erased: the customer's personal data was erased; none may be added again.
	Erased bool
}

// RegisterCustomer creates a customer.
type RegisterCustomer struct {
	CustomerID        string
	Name              string
	Email             string
	Phone             string
	PaymentPreference string
	At                time.Time
}

// ChangeCustomerDetails changes the fields that are set.
type ChangeCustomerDetails struct {
	CustomerID        string
	Name              *string
	Email             *string
	Phone             *string
	PaymentPreference *string
	At                time.Time
}

// EvolveCustomer applies one event.
func EvolveCustomer(c Customer, e Event) Customer {
	switch e := e.(type) {
	case CustomerRegistered:
		c = Customer{ID: e.CustomerID, Name: e.Name, Email: e.Email, Phone: e.Phone, PaymentPreference: e.PaymentPreference, Registered: true}
	case CustomerDetailsChanged:
		if e.Name != nil {
			c.Name = *e.Name
		}
		if e.Email != nil {
			c.Email = *e.Email
		}
		if e.Phone != nil {
			c.Phone = *e.Phone
		}
		if e.PaymentPreference != nil {
			c.PaymentPreference = *e.PaymentPreference
		}
	case CustomerErased:
		c.Name, c.Email, c.Phone, c.Erased = "", "", "", true
	}
	return c
}

// DecideRegisterCustomer registers a new customer.
func DecideRegisterCustomer(c Customer, cmd RegisterCustomer) ([]Event, error) {
	if err := checkNewID("customer_id", cmd.CustomerID); err != nil {
		return nil, err
	}
	if err := validateCustomerFields(&cmd.Name, &cmd.Email, &cmd.Phone, &cmd.PaymentPreference, true); err != nil {
		return nil, err
	}
	if c.Registered {
		return nil, fmt.Errorf("%w: %s", ErrCustomerExists, cmd.CustomerID)
	}
	return []Event{CustomerRegistered{
		CustomerID: cmd.CustomerID, Name: cmd.Name, Email: cmd.Email, Phone: cmd.Phone,
		PaymentPreference: cmd.PaymentPreference, RegisteredAt: cmd.At,
	}}, nil
}

// DecideChangeCustomerDetails records the fields that differ from the current ones; a change
// that changes nothing records nothing.
func DecideChangeCustomerDetails(c Customer, cmd ChangeCustomerDetails) ([]Event, error) {
	if cmd.Name == nil && cmd.Email == nil && cmd.Phone == nil && cmd.PaymentPreference == nil {
		return nil, invalid("body", "must set at least one of name, email, phone, payment_preference")
	}
	if err := validateCustomerFields(cmd.Name, cmd.Email, cmd.Phone, cmd.PaymentPreference, false); err != nil {
		return nil, err
	}
	if !c.Registered {
		return nil, fmt.Errorf("%w: %s", ErrCustomerNotFound, cmd.CustomerID)
	}
	if c.Erased && (cmd.Name != nil || cmd.Email != nil || cmd.Phone != nil) {
		return nil, fmt.Errorf("%w: %s; only payment_preference may change", ErrCustomerErased, cmd.CustomerID)
	}
	changed := CustomerDetailsChanged{CustomerID: c.ID, ChangedAt: cmd.At}
	any := false
	if cmd.Name != nil && *cmd.Name != c.Name {
		changed.Name, any = cmd.Name, true
	}
	if cmd.Email != nil && *cmd.Email != c.Email {
		changed.Email, any = cmd.Email, true
	}
	if cmd.Phone != nil && *cmd.Phone != c.Phone {
		changed.Phone, any = cmd.Phone, true
	}
	if cmd.PaymentPreference != nil && *cmd.PaymentPreference != c.PaymentPreference {
		changed.PaymentPreference, any = cmd.PaymentPreference, true
	}
	if !any {
		return nil, nil
	}
	return []Event{changed}, nil
}

// validateCustomerFields checks the fields that are present; on registration name and email
// are required.
func validateCustomerFields(name, email, phone, preference *string, registering bool) error {
	if name != nil {
		if strings.TrimSpace(*name) == "" || chars(*name) > 200 {
			return invalid("name", "must be 1..200 characters")
		}
	}
	if email != nil {
		if !validEmail(*email) {
			return invalid("email", "must be an address like name@example.com (at most 254 characters)")
		}
	}
	if phone != nil && chars(*phone) > 40 {
		return invalid("phone", "must be at most 40 characters")
	}
	if preference != nil && *preference != "" && !ValidPaymentPreference(*preference) {
		return invalid("payment_preference", "must be one of card, invoice, cash, bank_transfer, got %q", truncate(*preference, 40))
	}
	if !registering && preference != nil && *preference == "" {
		return invalid("payment_preference", "must be one of card, invoice, cash, bank_transfer")
	}
	return nil
}

func validEmail(s string) bool {
	if chars(s) > 254 || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	local, host, ok := strings.Cut(s, "@")
	return ok && local != "" && host != "" && !strings.Contains(host, "@") && strings.Contains(host, ".") &&
		!strings.HasPrefix(host, ".") && !strings.HasSuffix(host, ".")
}

// EraseCustomer erases a customer's personal data.
type EraseCustomer struct {
	CustomerID string
	At         time.Time
}

// DecideEraseCustomer records the erasure of a registered customer; erasing one already
// erased records nothing.
func DecideEraseCustomer(c Customer, cmd EraseCustomer) ([]Event, error) {
	if !c.Registered {
		return nil, fmt.Errorf("%w: %s", ErrCustomerNotFound, cmd.CustomerID)
	}
	if c.Erased {
		return nil, nil
	}
	return []Event{CustomerErased{CustomerID: c.ID, ErasedAt: cmd.At}}, nil
}
