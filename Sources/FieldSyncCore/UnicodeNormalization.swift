extension String {
    /// The string in Unicode Normalization Form C, by the standard library's own normaliser (the
    /// one that String comparison uses, so canonically equivalent spellings map to one form).
    public var nfc: String { String(decoding: _nfcCodeUnits, as: UTF8.self) }

    /// Whether the string is already in NFC.
    public var isNFC: Bool { utf8.elementsEqual(_nfcCodeUnits) }
}
