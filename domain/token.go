package domain

import "time"

// Access token events: every token's grant and revocation is in the one stream
// TokenRegistryStream, so who granted what to whom, and when, is in the log like every other
// change, and a server learns of every token by reading that single stream. The secret itself
// is never stored: only its SHA-256, from which it cannot be recovered.

// TokenRegistryStream holds every TokenCreated and TokenRevoked event.
const TokenRegistryStream = "access-tokens"

// TokenCreated grants Role to whoever presents the secret whose SHA-256 is SecretSHA256 (hex).
// The event's actor is who created it.
type TokenCreated struct {
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	SecretSHA256 string    `json:"secret_sha256"`
	CreatedAt    time.Time `json:"created_at"`
}

// TokenRevoked ends the token Name; its name stays taken, so the history keeps one meaning.
type TokenRevoked struct {
	Name      string    `json:"name"`
	RevokedAt time.Time `json:"revoked_at"`
}

func (TokenCreated) EventType() string { return "TokenCreated.v1" }
func (TokenRevoked) EventType() string { return "TokenRevoked.v1" }

func init() {
	registry["TokenCreated.v1"] = decoder[TokenCreated]()
	registry["TokenRevoked.v1"] = decoder[TokenRevoked]()
}
