package domain_test

import "github.com/orderledger/orderledger/domain"

func init() {
	sampleEvents = append(sampleEvents,
		domain.WebhookRegistered{WebhookID: "W1", URL: "https://erp.example.com/hooks", Types: []string{"OrderPlaced.v1"}, RegisteredAt: now},
		domain.WebhookDeleted{WebhookID: "W1", DeletedAt: now},
		domain.WebhookResumed{WebhookID: "W1", ResumedAt: now},
	)
}
