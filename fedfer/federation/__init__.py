"""One round of the protocol: what a message carries (protocol, payload, codec), a subject's client
and its crowd variant (client, group), the server's side (server, strategy, aggregation, validation,
resume) and what guards the round (privacy, audit, faults). Starting Flower's processes is
`fedfer.flower`'s concern."""
