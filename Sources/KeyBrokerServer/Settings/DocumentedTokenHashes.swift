/// The token hashes printed in KeyBroker's documentation and example configurations, now and
/// in earlier releases.
///
/// A configuration copied from the documentation keeps them, and the earlier ones were hashes
/// of guessable placeholder strings (`example-ops-token-replace-me`): anyone who read the
/// documentation could use such a token. The loader warns about every token whose hash is
/// here. A test keeps this list and the documentation in step.
public enum DocumentedTokenHashes {
    /// The hashes, lowercase hex.
    public static let all: Set<String> = [
        // Current documentation (hashes of random tokens that were never kept).
        "764420c9533dd1a20256013bfb85ddfdb92d921068bdcdb3704a1927c101f44e",
        "d5d814788880830153b9966d895cfcc9b6aeea58a7e636f73cc197d3a9455678",
        "66c983e1fb4b5580c70d6b0f9d24e6355418bdc08f6fe8694ec802ffe920eaec",
        "b80d090d8706151ecb3153e4334e4ee24821108990f24a25708de51a4495cb96",
        // Earlier documentation: hashes of published placeholder strings and of a token
        // printed in an example, so they work as tokens for anyone.
        "9256bb5f57c6ee68de0877afb342109817e0e20a0fa61f928e238fcb9fa84b6e",
        "5cb058f030fe1d4f5e0b62b0d43a684fd33a3b7c433750ebc8108df3122f84b1",
        "a897af7d6b7a0c964ab2eb7f3a6a66db0ce9a72192d08ae414df256ec0fdd941",
        "62391e5fa17d93521d717f0b082bbf606cd83bc77c8a3b9dda3d2edcd2db7cea",
        "cc12bcd9cfbcf813d0def66787f9dcb7350824184c2bd343ea7ae93992298589",
    ]
}
