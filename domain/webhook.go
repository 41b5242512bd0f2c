package domain

import "time"

// Webhook events: a webhook's definition lives in its stream "webhook-<id>", so who registered,
// deleted or resumed a webhook, and when, is in the log like every other change. The secret a
// webhook signs with is not: it is derived from a key kept outside the log.

// WebhookStream is the stream of webhook id.
func WebhookStream(id string) string { return "webhook-" + id }

// WebhookRegistered: deliveries to URL of the events of Types (every type when empty) that
// follow this event in the log.
type WebhookRegistered struct {
	WebhookID    string    `json:"webhook_id"`
	URL          string    `json:"url"`
	Types        []string  `json:"types,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
}

// WebhookDeleted ends a webhook's deliveries.
type WebhookDeleted struct {
	WebhookID string    `json:"webhook_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// WebhookResumed restarts the deliveries of a webhook that stopped as failing, from the event
// it failed on.
type WebhookResumed struct {
	WebhookID string    `json:"webhook_id"`
	ResumedAt time.Time `json:"resumed_at"`
}

func (WebhookRegistered) EventType() string { return "WebhookRegistered.v1" }
func (WebhookDeleted) EventType() string    { return "WebhookDeleted.v1" }
func (WebhookResumed) EventType() string    { return "WebhookResumed.v1" }

// The webhook events join the registry here rather than in its literal, so the list of order
// events stays as it was.
func init() {
	registry["WebhookRegistered.v1"] = decoder[WebhookRegistered]()
	registry["WebhookDeleted.v1"] = decoder[WebhookDeleted]()
	registry["WebhookResumed.v1"] = decoder[WebhookResumed]()
}
