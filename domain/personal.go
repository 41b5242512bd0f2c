package domain

// personalFields lists, per event type, the top-level fields of the event's data that hold
// personal data of the customer named by the data's "customer_id". They are what package
// privacy seals with that customer's data key before an append and what an erasure makes
// unreadable; the stream and webhooks null them for callers that may not see personal data.
var personalFields = map[string][]string{
	"CustomerRegistered.v1":     {"name", "email", "phone"},
	"CustomerDetailsChanged.v1": {"name", "email", "phone"},
	"OrderPlaced.v1":            {"shipping_address"},
}

// PersonalFields returns the personal fields of an event type (nil for a type that has none).
// The subject of those fields is the customer named by the data's "customer_id".
func PersonalFields(eventType string) []string { return personalFields[eventType] }

// PersonalDataTypes lists the event types that carry personal data.
func PersonalDataTypes() []string {
	types := make([]string, 0, len(personalFields))
	for t := range personalFields {
		types = append(types, t)
	}
	return types
}
