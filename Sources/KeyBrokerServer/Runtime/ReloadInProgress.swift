/// Another reload is running.
public struct ReloadInProgress: Error, CustomStringConvertible {
    public var description: String { "a reload is already in progress; try again in a moment" }
}
