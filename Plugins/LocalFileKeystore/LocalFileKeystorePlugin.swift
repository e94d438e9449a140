import Foundation
public import KeyBroker

/// The `local-file` keystore plugin: private keys wrapped with AES-256-GCM under a 256-bit
/// master key kept in a file.
///
/// ```yaml
/// keystores:
///   local:
///     type: local-file
///     path: ../data/master.key          # the current master key: new pairs use it
///     createIfMissing: true             # create it (0600, 32 random bytes) on first use
///     previousPaths: [../data/master-2025.key]   # older keys: their pairs stay decryptable
/// ```
public enum LocalFileKeystorePlugin: KeystorePlugin {
    public static let type = "local-file"

    public static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)? {
        let pathNode = settings.required("path", example: "../data/master.key")
        // A path from a caller would let the server report on any file it can see (exists,
        // mode, owner, size): a file oracle. Key files are the operator's to name.
        // (A refusal is recorded as an error, which makes the loader drop the instance.)
        let fileOnly = "it names a file on the server"
        context.allowsFromFileOnly(pathNode, because: fileOnly)
        context.allowsFromFileOnly(settings["createIfMissing"], because: "a test creates nothing")
        context.allowsFromFileOnly(settings["previousPaths"], because: fileOnly)
        let path = pathNode?.nonEmptyString()
        let createIfMissing = settings["createIfMissing"]?.bool() ?? false
        var previous: [URL] = []
        for item in settings["previousPaths"]?.list() ?? [] {
            if let value = item.nonEmptyString() { previous.append(context.resolvePath(value)) }
        }
        guard let path else { return nil }
        let current = context.resolvePath(path)
        if previous.contains(current), let node = settings["previousPaths"] {
            node.error("'\(node.path)' lists the current key file '\(path)'; list only older key files there")
            return nil
        }
        return LocalFileKeystore(
            name: name,
            currentKeyFile: current,
            previousKeyFiles: previous,
            createIfMissing: createIfMissing,
            logger: context.logger
        )
    }
}
