// The core builds on the model (key pairs, organizations, the recording format): whoever
// imports the core gets it too, as Hummingbird re-exports HummingbirdCore.
@_exported import KeyBrokerModel
