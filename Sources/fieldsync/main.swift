import FieldSyncCLI
import Foundation

exit(await FieldSyncCommand.run(arguments: Array(CommandLine.arguments.dropFirst())))
