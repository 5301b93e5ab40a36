import FieldSyncCore
import Foundation

/// Incidents by day and governorate as an inline SVG drawn by the server (no script, no external
/// library): stacked bars per day, a colour per governorate, a legend, and the same counts as a table.
struct TimelineChart {
    /// Colour-blind-safe (Okabe–Ito), dark enough on white; governorates past the eighth share grey.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D00", "#000000"]
    static let other = "#888888"

    /// Day (YYYY-MM-DD) → governorate → count, for incidents whose start names a day.
    var counts: [String: [String: Int]] = [:]
    var undated = 0

    init(_ records: [RecordState]) {
        for state in records where !state.isDeleted {
            guard let key = IncidentListPage.dateKey(state), key.count == 10, Self.date(key) != nil else {
                undated += 1
                continue
            }
            let governorate = state.value(at: "location.governorate")?.stringValue ?? "(no governorate)"
            counts[key, default: [:]][governorate, default: 0] += 1
        }
    }

    static func date(_ day: String) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = day.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
    }

    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    /// The most days the chart spans: the last year that has incidents.
    static let maximumDays = 366

    /// Every day from the first to the last incident, at most the last ``maximumDays`` of them.
    var days: [String] {
        guard let first = counts.keys.min().flatMap(Self.date), let last = counts.keys.max().flatMap(Self.date) else { return [] }
        var day = max(first, last.addingTimeInterval(-86_400 * Double(Self.maximumDays - 1)))
        var all: [String] = []
        while day <= last {
            all.append(Self.day(day))
            day = day.addingTimeInterval(86_400)
        }
        return all
    }

    /// Incidents on days before the chart's first day.
    var beforeChart: Int {
        guard let first = days.first else { return 0 }
        return counts.filter { $0.key < first }.values.reduce(0) { $0 + $1.values.reduce(0, +) }
    }

    var governorates: [String] {
        var totals: [String: Int] = [:]
        for perDay in counts.values { for (g, n) in perDay { totals[g, default: 0] += n } }
        return totals.keys.sorted { (totals[$0]!, $1) > (totals[$1]!, $0) }
    }

    func colour(_ governorate: String) -> String {
        guard let index = governorates.firstIndex(of: governorate), index < Self.palette.count else { return Self.other }
        return Self.palette[index]
    }

    func svg() -> HTML {
        let days = self.days
        guard !days.isEmpty else { return "<p>No incident has a start date with a day yet.</p>" }
        let (left, top, plotHeight, bottom) = (56.0, 16.0, 240.0, 84.0)
        let barWidth = max(3.0, min(48.0, 840.0 / Double(days.count)))
        let width = left + barWidth * Double(days.count) + 16
        let maximum = max(1, days.map { counts[$0]?.values.reduce(0, +) ?? 0 }.max() ?? 1)
        let step = Swift.max(1, Int((Double(maximum) / 5).rounded(.up)))
        var shapes: [HTML] = []
        for tick in stride(from: 0, through: maximum, by: step) {
            let y = top + plotHeight - Double(tick) / Double(maximum) * plotHeight
            shapes.append(
                "<line x1=\"\(Self.n(left))\" x2=\"\(Self.n(width - 8))\" y1=\"\(Self.n(y))\" y2=\"\(Self.n(y))\" stroke=\"#d0d0d0\"/><text x=\"\(Self.n(left - 6))\" y=\"\(Self.n(y + 4))\" text-anchor=\"end\">\(tick)</text>"
            )
        }
        let order = governorates
        for (index, day) in days.enumerated() {
            var y = top + plotHeight
            let x = left + Double(index) * barWidth
            for governorate in order {
                guard let count = counts[day]?[governorate], count > 0 else { continue }
                let height = Double(count) / Double(maximum) * plotHeight
                y -= height
                shapes.append(
                    "<rect x=\"\(Self.n(x + 0.5))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(1, barWidth - 1)))\" height=\"\(Self.n(height))\" fill=\"\(colour(governorate))\"><title>\(day) · \(governorate): \(count)</title></rect>"
                )
            }
        }
        let labelEvery = max(1, Int((36 / barWidth).rounded(.up)))
        for index in stride(from: 0, to: days.count, by: labelEvery) {
            let x = left + Double(index) * barWidth + barWidth / 2
            let y = top + plotHeight + 14
            shapes.append(
                "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" text-anchor=\"end\" transform=\"rotate(-35 \(Self.n(x)) \(Self.n(y)))\">\(days[index])</text>"
            )
        }
        shapes.append(
            "<line x1=\"\(Self.n(left))\" x2=\"\(Self.n(width - 8))\" y1=\"\(Self.n(top + plotHeight))\" y2=\"\(Self.n(top + plotHeight))\" stroke=\"#1a1a1a\"/>"
        )
        shapes.append(
            "<text x=\"14\" y=\"\(Self.n(top + plotHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(Self.n(top + plotHeight / 2)))\">Incidents</text>"
        )
        shapes.append(
            "<text x=\"\(Self.n(left + barWidth * Double(days.count) / 2))\" y=\"\(Self.n(top + plotHeight + bottom - 6))\" text-anchor=\"middle\">Day the incident began</text>"
        )
        let legend = HTML.joined(
            order.map { governorate in
                "<li><svg width=\"14\" height=\"14\" aria-hidden=\"true\"><rect width=\"14\" height=\"14\" fill=\"\(colour(governorate))\"/></svg> <span dir=\"auto\">\(governorate)</span></li>"
            })
        let total = counts.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        return """
            <figure>
            <svg role="img" aria-labelledby="chart-title chart-desc" width="\(Self.n(width))" height="\(Self.n(top + plotHeight + bottom))" viewBox="0 0 \(Self.n(width)) \(Self.n(top + plotHeight + bottom))" xmlns="http://www.w3.org/2000/svg">
            <title id="chart-title">Incidents per day, by governorate</title>
            <desc id="chart-desc">\(total) incidents from \(days.first!) to \(days.last!); the busiest day had \(maximum).</desc>
            \(shapes)
            </svg>
            <figcaption><ul class="legend" aria-label="Governorates">\(legend)</ul></figcaption>
            </figure>
            """
    }

    /// The same counts as a table, for screen readers and for copying.
    func table() -> HTML {
        let order = governorates
        guard !order.isEmpty else { return "" }
        let head = HTML.joined(order.map { "<th scope=\"col\" dir=\"auto\">\($0)</th>" })
        let rows = HTML.joined(
            counts.keys.sorted().map { day in
                let cells = HTML.joined(order.map { "<td>\(counts[day]?[$0] ?? 0)</td>" })
                return "<tr><th scope=\"row\">\(day)</th>\(cells)</tr>"
            })
        return
            "<details><summary>The counts as a table</summary><table><thead><tr><th scope=\"col\">Day</th>\(head)</tr></thead><tbody>\(rows)</tbody></table></details>"
    }

    static func n(_ value: Double) -> String { String(format: "%.1f", value) }
}
