package domain_test

import (
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
)

var ada = domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", PaymentPreference: "card", RegisteredAt: now}

func TestRegisterCustomer(t *testing.T) {
	valid := domain.RegisterCustomer{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", PaymentPreference: "card", At: now}
	with := func(change func(*domain.RegisterCustomer)) domain.RegisterCustomer {
		c := valid
		change(&c)
		return c
	}
	runScenarios(t, domain.EvolveCustomer, domain.DecideRegisterCustomer, []scenario[domain.RegisterCustomer]{
		{name: "registers", when: valid, then: events(ada)},
		{
			name: "phone and preference are optional",
			when: with(func(c *domain.RegisterCustomer) { c.Phone, c.PaymentPreference = "", "" }),
			then: events(domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", RegisteredAt: now}),
		},
		{name: "an existing id is refused", given: events(ada), when: valid, err: domain.ErrCustomerExists},
		{name: "customer_id shape", when: with(func(c *domain.RegisterCustomer) { c.CustomerID = "C 1" }), err: domain.ErrInvalidInput, field: "customer_id"},
		{name: "customer_id empty", when: with(func(c *domain.RegisterCustomer) { c.CustomerID = "" }), err: domain.ErrInvalidInput, field: "customer_id"},
		{name: "name blank", when: with(func(c *domain.RegisterCustomer) { c.Name = "  " }), err: domain.ErrInvalidInput, field: "name"},
		{name: "name too long", when: with(func(c *domain.RegisterCustomer) { c.Name = strings.Repeat("a", 201) }), err: domain.ErrInvalidInput, field: "name"},
		{name: "email without at", when: with(func(c *domain.RegisterCustomer) { c.Email = "ada.example.com" }), err: domain.ErrInvalidInput, field: "email"},
		{name: "email without a dotted host", when: with(func(c *domain.RegisterCustomer) { c.Email = "ada@localhost" }), err: domain.ErrInvalidInput, field: "email"},
		{name: "email with two ats", when: with(func(c *domain.RegisterCustomer) { c.Email = "a@b@example.com" }), err: domain.ErrInvalidInput, field: "email"},
		{name: "email with a space", when: with(func(c *domain.RegisterCustomer) { c.Email = "a da@example.com" }), err: domain.ErrInvalidInput, field: "email"},
		{name: "email host ends in a dot", when: with(func(c *domain.RegisterCustomer) { c.Email = "ada@example." }), err: domain.ErrInvalidInput, field: "email"},
		{name: "phone too long", when: with(func(c *domain.RegisterCustomer) { c.Phone = strings.Repeat("1", 41) }), err: domain.ErrInvalidInput, field: "phone"},
		{name: "unknown preference", when: with(func(c *domain.RegisterCustomer) { c.PaymentPreference = "cheque" }), err: domain.ErrInvalidInput, field: "payment_preference"},
	})
}

func TestChangeCustomerDetails(t *testing.T) {
	runScenarios(t, domain.EvolveCustomer, domain.DecideChangeCustomerDetails, []scenario[domain.ChangeCustomerDetails]{
		{
			name:  "records only the fields that differ",
			given: events(ada),
			when:  domain.ChangeCustomerDetails{CustomerID: "C1", Name: ptr("Ada"), Email: ptr("ada@example.org"), Phone: ptr("+44 1"), At: now},
			then:  events(domain.CustomerDetailsChanged{CustomerID: "C1", Email: ptr("ada@example.org"), Phone: ptr("+44 1"), ChangedAt: now}),
		},
		{
			name:  "a change to the same values records nothing",
			given: events(ada),
			when:  domain.ChangeCustomerDetails{CustomerID: "C1", Name: ptr("Ada"), PaymentPreference: ptr("card"), At: now},
		},
		{
			name:  "a later change sees the earlier one",
			given: events(ada, domain.CustomerDetailsChanged{CustomerID: "C1", Name: ptr("Ada L"), ChangedAt: now}),
			when:  domain.ChangeCustomerDetails{CustomerID: "C1", Name: ptr("Ada L"), At: now},
		},
		{
			name:  "the phone can be cleared",
			given: events(domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", Phone: "+44 1", RegisteredAt: now}),
			when:  domain.ChangeCustomerDetails{CustomerID: "C1", Phone: ptr(""), At: now},
			then:  events(domain.CustomerDetailsChanged{CustomerID: "C1", Phone: ptr(""), ChangedAt: now}),
		},
		{name: "unknown customer", when: domain.ChangeCustomerDetails{CustomerID: "C9", Name: ptr("X"), At: now}, err: domain.ErrCustomerNotFound},
		{name: "nothing to change", given: events(ada), when: domain.ChangeCustomerDetails{CustomerID: "C1", At: now}, err: domain.ErrInvalidInput, field: "body"},
		{name: "email invalid", given: events(ada), when: domain.ChangeCustomerDetails{CustomerID: "C1", Email: ptr("nope"), At: now}, err: domain.ErrInvalidInput, field: "email"},
		{name: "name blank", given: events(ada), when: domain.ChangeCustomerDetails{CustomerID: "C1", Name: ptr(""), At: now}, err: domain.ErrInvalidInput, field: "name"},
		{name: "preference cannot be blanked", given: events(ada), when: domain.ChangeCustomerDetails{CustomerID: "C1", PaymentPreference: ptr(""), At: now}, err: domain.ErrInvalidInput, field: "payment_preference"},
		{name: "an erased customer's name cannot come back", given: events(ada, erased), when: domain.ChangeCustomerDetails{CustomerID: "C1", Name: ptr("Ada"), At: now}, err: domain.ErrCustomerErased},
		{name: "an erased customer's email cannot come back", given: events(ada, erased), when: domain.ChangeCustomerDetails{CustomerID: "C1", Email: ptr("ada@example.com"), At: now}, err: domain.ErrCustomerErased},
		{name: "an erased customer's phone cannot come back", given: events(ada, erased), when: domain.ChangeCustomerDetails{CustomerID: "C1", Phone: ptr("+44 1"), At: now}, err: domain.ErrCustomerErased},
		{
			name:  "an erased customer's payment preference may change",
			given: events(ada, erased),
			when:  domain.ChangeCustomerDetails{CustomerID: "C1", PaymentPreference: ptr("invoice"), At: now},
			then:  events(domain.CustomerDetailsChanged{CustomerID: "C1", PaymentPreference: ptr("invoice"), ChangedAt: now}),
		},
	})
}

var erased = domain.CustomerErased{CustomerID: "C1", ErasedAt: now}

func TestEraseCustomer(t *testing.T) {
	runScenarios(t, domain.EvolveCustomer, domain.DecideEraseCustomer, []scenario[domain.EraseCustomer]{
		{name: "erases a registered customer", given: events(ada), when: domain.EraseCustomer{CustomerID: "C1", At: now}, then: events(erased)},
		{name: "erasing again records nothing", given: events(ada, erased), when: domain.EraseCustomer{CustomerID: "C1", At: now}},
		{name: "unknown customer", when: domain.EraseCustomer{CustomerID: "C9", At: now}, err: domain.ErrCustomerNotFound},
	})
	c := fold(domain.EvolveCustomer, events(ada, erased))
	if c.Name != "" || c.Email != "" || c.Phone != "" || !c.Erased || !c.Registered || c.PaymentPreference != "card" {
		t.Fatalf("erased customer folds to %+v; want no personal data, erased, still registered with its preference", c)
	}
}

func TestCustomerFold(t *testing.T) {
	c := fold(domain.EvolveCustomer, events(ada, domain.CustomerDetailsChanged{CustomerID: "C1", Email: ptr("new@example.com"), PaymentPreference: ptr("invoice"), ChangedAt: now}))
	want := domain.Customer{ID: "C1", Name: "Ada", Email: "new@example.com", PaymentPreference: "invoice", Registered: true}
	if c != want {
		t.Errorf("folded %+v, want %+v", c, want)
	}
}
