package domain

import "encoding/json"

// personalFields lists, per event type, the top-level fields of the event's data that hold
// personal data of the customer named by the data's "customer_id". They are what package
// privacy seals with that customer's data key before an append and what an erasure makes
// unreadable; the stream, webhooks and the read routes null them for callers that may not
// see personal data.
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

// RedactPersonalData returns an event's data with its personal fields null, for a reader who
// may not see them. Data that is not a JSON object (no event of ours) is withheld whole
// rather than passed on unread.
func RedactPersonalData(eventType string, data []byte) json.RawMessage {
	fields := personalFields[eventType]
	if len(fields) == 0 {
		return data
	}
	return NullFields(data, fields...)
}

// NullFields returns the JSON object doc with each of fields that it holds set to null;
// anything but an object comes back as null.
func NullFields(doc []byte, fields ...string) json.RawMessage {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(doc, &object); err != nil || object == nil {
		return json.RawMessage("null")
	}
	for _, f := range fields {
		if _, ok := object[f]; ok {
			object[f] = json.RawMessage("null")
		}
	}
	out, err := json.Marshal(object)
	if err != nil {
		return json.RawMessage("null")
	}
	return out
}
