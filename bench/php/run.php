<?php
/**
 * The PHP side of bench/filter-vs-php.sh: times MediaWiki AbuseFilter's own evaluator on a
 * directory of filters and one edit's variables.
 *
 *   MW_CONFIG_FILE=/path/to/LocalSettings.php php run.php --filters DIR --vars FILE --iterations N
 *
 * Prints one JSON line:
 *   {"engine":"abusefilter-php","filters":200,"iterations":N,"ms_each":…,"ms_median":…,"matched":[…]}
 * where ms_each is the mean wall time, in milliseconds, to evaluate every filter once, and
 * ms_median the median of the iterations' times.
 *
 * What is timed, and why:
 * - Each filter is tokenized, parsed and syntax-checked once, before timing. In production
 *   AbuseFilter keeps the parsed tree in its parser cache (APCu); here we keep the tree
 *   objects themselves, so neither parsing nor cache look-ups are in the timing.
 * - Each iteration stands for one edit: a new FilterEvaluator from AbuseFilter's
 *   RuleCheckerFactory (so the per-edit function-result cache starts empty) over a new
 *   VariableHolder, then all filters in file-name order, as FilterRunner does for an edit.
 *   Building the holder from the decoded JSON is not timed.
 * - A filter evaluates as in FilterEvaluator::checkConditions(): the tree's value, with
 *   "undefined" counting as false; the condition limit is disabled.
 * --profile N also prints the N slowest filters to stderr.
 * A filter that fails to parse or throws while evaluating is an error (exit status 2):
 * the benchmark's filters must all be valid and must not fail on its edits.
 */

use MediaWiki\Extension\AbuseFilter\AbuseFilterServices;
use MediaWiki\Extension\AbuseFilter\Parser\AFPData;
use MediaWiki\Extension\AbuseFilter\Parser\AFPSyntaxTree;
use MediaWiki\Extension\AbuseFilter\Parser\FilterEvaluator;
use MediaWiki\Extension\AbuseFilter\Variables\VariableHolder;

require_once ( getenv( 'MW_INSTALL_PATH' ) ?: '/usr/share/mediawiki' ) . '/maintenance/Maintenance.php';

class FilterBench extends Maintenance {
	public function __construct() {
		parent::__construct();
		$this->addDescription( 'Time AbuseFilter on a directory of filters (*.af) and one edit\'s variables' );
		$this->addOption( 'filters', 'Directory of filter files, one rule per *.af file', true, true );
		$this->addOption( 'vars', 'JSON file: one object of AbuseFilter variables', true, true );
		$this->addOption( 'iterations', 'How many times to evaluate all filters (default 20)', false, true );
		$this->addOption( 'warmup', 'Untimed evaluations of all filters before timing (default 2)', false, true );
		$this->addOption( 'profile', 'Also print the N slowest filters (mean ms each) to stderr', false, true );
	}

	/**
	 * Private methods of FilterEvaluator that the production code reaches through
	 * checkConditions(), bound so we can call them on a pre-parsed tree.
	 * @return Closure[] [ getTree(FilterEvaluator, string), evalTree(FilterEvaluator, AFPSyntaxTree) ]
	 */
	private static function privates(): array {
		$getTree = Closure::bind( static function ( FilterEvaluator $ev, string $code ): AFPSyntaxTree {
			return $ev->getTree( $code );
		}, null, FilterEvaluator::class );
		$evalTree = Closure::bind( static function ( FilterEvaluator $ev, AFPSyntaxTree $tree ): AFPData {
			return $ev->evalTree( $tree );
		}, null, FilterEvaluator::class );
		return [ $getTree, $evalTree ];
	}

	public function execute() {
		$dir = rtrim( $this->getOption( 'filters' ), '/' );
		$iterations = (int)$this->getOption( 'iterations', 20 );
		$warmup = (int)$this->getOption( 'warmup', 2 );
		if ( $iterations < 1 ) {
			$this->fatalError( '--iterations must be at least 1' );
		}

		$paths = glob( "$dir/*.af" );
		sort( $paths, SORT_STRING );
		if ( !$paths ) {
			$this->fatalError( "no *.af files in $dir" );
		}
		$varsJson = file_get_contents( $this->getOption( 'vars' ) );
		$varsData = $varsJson === false ? null : json_decode( $varsJson, true );
		if ( !is_array( $varsData ) ) {
			$this->fatalError( 'cannot read a JSON object from ' . $this->getOption( 'vars' ) );
		}

		$factory = AbuseFilterServices::getRuleCheckerFactory();
		[ $getTree, $evalTree ] = self::privates();

		// Parse once: tokenizer, tree parser and SyntaxChecker, as getTree() does on a cache miss.
		$trees = [];
		$errors = [];
		$parser = $factory->newRuleChecker();
		$parser->toggleConditionLimit( false );
		foreach ( $paths as $path ) {
			$name = basename( $path, '.af' );
			$code = file_get_contents( $path );
			try {
				$trees[$name] = $getTree( $parser, $code );
				// What saving the filter would check too (FilterValidator): evaluate every
				// branch, without short-circuits, on unknown values.
				$status = $parser->checkSyntax( $code );
				if ( $status->getException() ) {
					$errors[] = "$name: syntax: " . self::describe( $status->getException() );
				}
			} catch ( Throwable $e ) {
				$errors[] = "$name: syntax: " . self::describe( $e );
			}
		}

		$profile = (int)$this->getOption( 'profile', 0 );
		$perFilter = array_fill_keys( array_keys( $trees ), 0 );
		$evalAll = static function ( bool $collect ) use (
			$factory, $evalTree, $trees, $varsData, $profile, &$errors, &$perFilter
		) {
			$ev = $factory->newRuleChecker( VariableHolder::newFromArray( $varsData ) );
			$ev->toggleConditionLimit( false );
			$matched = [];
			$t0 = hrtime( true );
			foreach ( $trees as $name => $tree ) {
				if ( $profile ) {
					$f0 = hrtime( true );
				}
				try {
					$res = $evalTree( $ev, $tree );
					$hit = $res->getType() === AFPData::DUNDEFINED ? false : $res->toBool();
				} catch ( Throwable $e ) {
					$hit = false;
					if ( $collect ) {
						$errors[] = "$name: runtime: " . self::describe( $e );
					}
				}
				if ( $hit ) {
					$matched[] = (string)$name;
				}
				if ( $profile ) {
					$perFilter[$name] += hrtime( true ) - $f0;
				}
			}
			return [ hrtime( true ) - $t0, $matched ];
		};

		[ , $matched ] = $evalAll( true );
		if ( $errors ) {
			fwrite( STDERR, "run.php: filters failed in AbuseFilter:\n  " . implode( "\n  ", $errors ) . "\n" );
			exit( 2 );
		}
		for ( $i = 1; $i < $warmup; $i++ ) {
			$evalAll( false );
		}
		$perFilter = array_fill_keys( array_keys( $trees ), 0 );

		$stats = MediaWiki\MediaWikiServices::getInstance()->getStatsdDataFactory();
		$ns = 0;
		$each = [];
		for ( $i = 0; $i < $iterations; $i++ ) {
			[ $took ] = $evalAll( false );
			$ns += $took;
			$each[] = $took;
			// AbuseFilter reports two timings per filter to statsd; the buffer is sent and
			// emptied at the end of each web request, so empty it between our "requests".
			if ( method_exists( $stats, 'clearData' ) ) {
				$stats->clearData();
			}
		}

		if ( $profile ) {
			arsort( $perFilter );
			fwrite( STDERR, "slowest filters (mean ms per evaluation; timing each one adds overhead):\n" );
			foreach ( array_slice( $perFilter, 0, $profile, true ) as $name => $total ) {
				fprintf( STDERR, "  %8.3f  %s\n", $total / 1e6 / $iterations, $name );
			}
		}

		sort( $matched, SORT_STRING );
		echo json_encode( [
			'engine' => 'abusefilter-php',
			'filters' => count( $trees ),
			'iterations' => $iterations,
			'ms_each' => round( $ns / 1e6 / $iterations, 4 ),
			'ms_median' => round( self::median( $each ) / 1e6, 4 ),
			'matched' => $matched,
		], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ), "\n";
	}

	/** The median of $values (the mean of the middle two for an even count). */
	private static function median( array $values ): float {
		sort( $values );
		$n = count( $values );
		$mid = intdiv( $n, 2 );
		return $n % 2 ? (float)$values[$mid] : ( $values[$mid - 1] + $values[$mid] ) / 2;
	}

	private static function describe( Throwable $e ): string {
		return method_exists( $e, 'getMessageForLogs' )
			? $e->getMessageForLogs()
			: get_class( $e ) . ': ' . $e->getMessage();
	}
}

$maintClass = FilterBench::class;
require_once RUN_MAINTENANCE_IF_MAIN;
