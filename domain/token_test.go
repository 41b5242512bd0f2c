package domain_test

import "github.com/orderledger/orderledger/domain"

func init() {
	sampleEvents = append(sampleEvents,
		domain.TokenCreated{Name: "shop-frontend", Role: "clerk", SecretSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", CreatedAt: now},
		domain.TokenRevoked{Name: "shop-frontend", RevokedAt: now},
	)
}
