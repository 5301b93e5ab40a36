/// Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
/// Communication with PURBs", 2019): the padded length leaks at most O(log log n) bits of a length,
/// for at most 12 % more. Used by sealed columns and sealed bundles (Protocol §12.5.1).
public enum Padme {
    /// The length `length` is padded to; lengths up to 2 are kept.
    public static func paddedLength(_ length: Int) -> Int {
        guard length > 2 else { return length }
        let exponent = Int.bitWidth - 1 - length.leadingZeroBitCount
        let bits = Int.bitWidth - exponent.leadingZeroBitCount
        let mask = (1 << (exponent - bits)) - 1
        return (length + mask) & ~mask
    }
}
