<?php

namespace MediaWiki\Extension\WikiGuard;

use ApiMessage;
use BagOStuff;
use MediaWiki\MediaWikiServices;
use MediaWiki\Revision\RevisionRecord;
use MediaWiki\Revision\SlotRecord;
use Message;
use ObjectCache;
use Psr\Log\LoggerInterface;
use RequestContext;
use StatusValue;
use Title;
use User;
use WikiMap;

/**
 * The check door, seen from MediaWiki: turns an action into the JSON `POST /v1/check` reads,
 * turns the answer into a Status MediaWiki shows (and the Action API reports with
 * `wikiguard-disallowed` / `wikiguard-warning`), applies the consequences and remembers the
 * tags for the change that is about to be saved. It decides nothing itself.
 */
class Checker {
	/** @var Client */
	private $client;
	/** @var Consequences */
	private $consequences;
	/** @var MediaWikiServices */
	private $services;
	/** @var string[] */
	private $checkedActions;
	/** @var int */
	private $variablesTtl;
	/** @var LoggerInterface */
	private $logger;
	/** @var BagOStuff */
	private $localCache;
	/** @var array<string,string[]> pending change tags, by tagKey() */
	private $pendingTags = [];

	/**
	 * @param Client $client
	 * @param Consequences $consequences
	 * @param MediaWikiServices $services
	 * @param string[] $checkedActions
	 * @param int $variablesTtl seconds
	 * @param LoggerInterface $logger
	 */
	public function __construct(
		Client $client,
		Consequences $consequences,
		MediaWikiServices $services,
		array $checkedActions,
		int $variablesTtl,
		LoggerInterface $logger
	) {
		$this->client = $client;
		$this->consequences = $consequences;
		$this->services = $services;
		$this->checkedActions = $checkedActions;
		$this->variablesTtl = $variablesTtl;
		$this->logger = $logger;
		$this->localCache = ObjectCache::getLocalServerInstance( CACHE_ANYTHING );
	}

	/**
	 * @param string $action edit, move, …
	 * @return bool whether the wiki sends this action to the check door
	 */
	public function checks( string $action ): bool {
		return in_array( $action, $this->checkedActions, true );
	}

	/**
	 * The MediaWiki-side variables (new_html, new_pst, …) enabled filters read for this
	 * action, from `GET /v1/check/variables`, cached briefly in the local server cache. When
	 * the service cannot say, all of them (so no filter misses a variable it reads).
	 *
	 * @param string $action
	 * @return string[]
	 */
	public function wantedVariables( string $action ): array {
		return $this->cachedList( '/v1/check/variables?action=' . rawurlencode( $action ),
			'variables', [ 'new_html', 'new_pst' ] );
	}

	/**
	 * The change tags enabled filters can add (`GET /v1/check/tags`), cached like the
	 * variables; none when the service cannot say.
	 *
	 * @return string[]
	 */
	public function filterTags(): array {
		return $this->cachedList( '/v1/check/tags', 'tags', [] );
	}

	/**
	 * A list of strings the service answers under $field at $path, kept in the local server
	 * cache for $wgWikiGuardVariablesCacheSeconds; $fallback (not cached) when it cannot say.
	 *
	 * @param string $path
	 * @param string $field
	 * @param string[] $fallback
	 * @return string[]
	 */
	private function cachedList( string $path, string $field, array $fallback ): array {
		$key = $this->localCache->makeKey( 'wikiguard', $field, $path );
		$cached = $this->variablesTtl > 0 ? $this->localCache->get( $key ) : false;
		if ( is_array( $cached ) ) {
			return $cached;
		}
		$r = $this->client->call( 'check', 'GET', $path );
		if ( !$r->ok() || !is_array( $r->body[$field] ?? null ) ) {
			return $fallback;
		}
		$list = array_values( array_map( 'strval', $r->body[$field] ) );
		if ( $this->variablesTtl > 0 ) {
			$this->localCache->set( $key, $list, $this->variablesTtl );
		}
		return $list;
	}

	/**
	 * Sends one action and acts on the answer.
	 *
	 * @param array $action the JSON body of POST /v1/check
	 * @param User $user who acts (for consequences)
	 * @param string|null $tagKey where the change's tags wait for RecentChange_save
	 * @return StatusValue good to let the action through; fatal with the messages to show
	 */
	public function check( array $action, User $user, ?string $tagKey ): StatusValue {
		$start = microtime( true );
		$r = $this->client->call( 'check', 'POST', '/v1/check', $action );
		$ms = ( microtime( true ) - $start ) * 1000;
		$this->services->getStatsdDataFactory()->timing( 'wikiguard.check.' . ( $action['action'] ?? 'unknown' ), $ms );
		$this->logger->debug( 'WikiGuard: {action} checked: {ms} ms waiting for the service', [
			'action' => $action['action'] ?? '', 'ms' => round( $ms, 2 ),
		] );
		if ( !$r->ok() ) {
			return $this->unavailable( 'check', $r );
		}
		$answer = $r->body;
		$descriptions = [];
		foreach ( $answer['messages'] ?? [] as $m ) {
			$descriptions[(int)$m['filter']] = (string)$m['description'];
		}
		if ( !empty( $answer['matches'] ) ) {
			$this->logger->info( 'WikiGuard: {action} matched filters {filters}: {verdict}', [
				'action' => $action['action'], 'filters' => implode( ',', $answer['matches'] ),
				'verdict' => $answer['verdict'] ?? '',
			] );
		}
		$this->consequences->apply( (array)( $answer['actions'] ?? [] ), $descriptions, $user,
			(string)( $action['request']['ip'] ?? '' ) );
		$tags = (array)( $answer['tags'] ?? [] );
		if ( $tags && $tagKey !== null ) {
			$this->pendingTags[$tagKey] = $tags;
		}
		$prevents = in_array( $answer['verdict'] ?? 'allow', [ 'warn', 'disallow', 'block' ], true );
		if ( !$prevents ) {
			return StatusValue::newGood();
		}
		$taken = [];
		foreach ( $answer['taken'] ?? [] as $t ) {
			$taken[(int)$t['filter']] = (array)$t['actions'];
		}
		$status = StatusValue::newGood();
		foreach ( $answer['messages'] ?? [] as $m ) {
			$filter = (int)$m['filter'];
			$actions = $taken[$filter] ?? [];
			$code = $actions === [ 'warn' ] ? 'wikiguard-warning' : 'wikiguard-disallowed';
			$message = $this->message( (string)$m['key'], [ (string)$m['description'], $filter ] );
			$status->fatal( ApiMessage::create( $message, $code, [ 'wikiguard' => [
				'id' => $filter,
				'description' => (string)$m['description'],
				'actions' => $actions,
			] ] ) );
		}
		if ( $status->isGood() ) {
			$status->fatal( ApiMessage::create( $this->message( 'abusefilter-disallowed', [ '', 0 ] ), 'wikiguard-disallowed' ) );
		}
		return $status;
	}

	/**
	 * Logs (debug) and counts (statsd `wikiguard.hook.ACTION`) the whole time a hook took.
	 *
	 * @param string $action
	 * @param float $start microtime( true ) when the hook began
	 */
	public function logDuration( string $action, float $start ): void {
		$ms = ( microtime( true ) - $start ) * 1000;
		$this->services->getStatsdDataFactory()->timing( "wikiguard.hook.$action", $ms );
		$this->logger->debug( 'WikiGuard: the {action} hook took {ms} ms', [ 'action' => $action, 'ms' => round( $ms, 2 ) ] );
	}

	/**
	 * Runs $build (which gathers the facts and calls check()); an exception there (a database
	 * error reading the page, say, or a bad answer) is logged and the fail mode decides, so
	 * users never see a PHP error from this extension. Every caller of check() goes through
	 * here.
	 *
	 * @param callable $build returns a StatusValue
	 * @return StatusValue
	 */
	public function guarded( callable $build ): StatusValue {
		try {
			return $build();
		} catch ( \Throwable $e ) {
			$this->logger->error( 'WikiGuard: checking an action failed: {exception}', [
				'exception' => get_class( $e ) . ': ' . $e->getMessage(),
			] );
			return $this->unavailable( 'check', new Response( 0, null, get_class( $e ) ) );
		}
	}

	/**
	 * The tags the check gave for a change that is now being recorded (taken once).
	 *
	 * @param string $tagKey
	 * @return string[]
	 */
	public function takeTags( string $tagKey ): array {
		$tags = $this->pendingTags[$tagKey] ?? [];
		unset( $this->pendingTags[$tagKey] );
		return $tags;
	}

	/**
	 * Where a change's tags wait between the check and RecentChange_save.
	 *
	 * @param string $action
	 * @param string $userName
	 * @param string $prefixedTitle
	 * @return string
	 */
	public static function tagKey( string $action, string $userName, string $prefixedTitle ): string {
		return "$action|$userName|$prefixedTitle";
	}

	/**
	 * The door could not answer: its fail mode decides.
	 *
	 * @param string $door
	 * @param Response $r
	 * @return StatusValue
	 */
	public function unavailable( string $door, Response $r ): StatusValue {
		if ( !$this->client->failsClosed( $door ) ) {
			$this->logger->warning( 'WikiGuard: the {door} door did not answer ({error}); failing open', [
				'door' => $door, 'error' => $r->error,
			] );
			return StatusValue::newGood();
		}
		$this->logger->warning( 'WikiGuard: the {door} door did not answer ({error}); failing closed', [
			'door' => $door, 'error' => $r->error,
		] );
		return StatusValue::newFatal( ApiMessage::create( wfMessage( 'wikiguard-unavailable' ), 'wikiguard-unavailable' ) );
	}

	/**
	 * A consequence's message. AbuseFilter's keys (abusefilter-disallowed, …) are used when the
	 * wiki has them (AbuseFilter installed, or the page MediaWiki:Abusefilter-… written);
	 * otherwise this extension's own text.
	 *
	 * @param string $key
	 * @param array $params [description, filter id]
	 * @return Message
	 */
	private function message( string $key, array $params ): Message {
		$msg = wfMessage( $key, ...$params );
		if ( !$msg->exists() && str_starts_with( $key, 'abusefilter-' ) ) {
			$ours = wfMessage( 'wikiguard-' . substr( $key, strlen( 'abusefilter-' ) ), ...$params );
			if ( $ours->exists() ) {
				return $ours;
			}
		}
		if ( !$msg->exists() ) {
			return wfMessage( 'wikiguard-disallowed', ...$params );
		}
		return $msg;
	}

	// -----------------------------------------------------------------------------------
	// Facts
	// -----------------------------------------------------------------------------------

	/**
	 * The body every action starts with.
	 *
	 * @param string $kind
	 * @param User $user
	 * @return array
	 */
	public function base( string $kind, User $user ): array {
		$lang = $this->services->getContentLanguage()->getCode();
		return [
			'action' => $kind,
			'wiki' => [ 'name' => WikiMap::getCurrentWikiId(), 'language' => $lang ],
			'user' => $this->userFacts( $user ),
			'request' => $this->requestFacts(),
		];
	}

	/**
	 * @param User $user
	 * @return array
	 */
	public function userFacts( User $user ): array {
		$facts = [
			'name' => $user->getName(),
			'id' => $user->getId(),
			'temporary' => method_exists( $user, 'isTemp' ) ? (bool)$user->isTemp() : false,
		];
		if ( $user->isRegistered() ) {
			$facts['editcount'] = (int)$user->getEditCount();
			$reg = $user->getRegistration();
			if ( $reg ) {
				$facts['registration'] = (string)$reg;
			}
			$auth = $user->getEmailAuthenticationTimestamp();
			$facts['emailconfirmed'] = $auth ? (string)$auth : false;
		}
		$facts['groups'] = array_values( $this->services->getUserGroupManager()->getUserEffectiveGroups( $user ) );
		$facts['rights'] = array_values( $this->services->getPermissionManager()->getUserPermissions( $user ) );
		$facts['blocked'] = $user->getBlock() !== null;
		return $facts;
	}

	/**
	 * @return array
	 */
	public function requestFacts(): array {
		$request = RequestContext::getMain()->getRequest();
		$facts = [];
		try {
			$facts['ip'] = $request->getIP();
		} catch ( \Throwable $e ) {
			// Maintenance scripts have no client address.
		}
		$ua = $request->getHeader( 'User-Agent' );
		if ( $ua !== false ) {
			$facts['user_agent'] = (string)$ua;
		}
		$xff = $request->getHeader( 'X-Forwarded-For' );
		if ( $xff !== false ) {
			$facts['xff'] = (string)$xff;
		}
		return $facts;
	}

	/**
	 * A page's facts: ids, titles, history and protection.
	 *
	 * @param Title $title
	 * @param RevisionRecord|null $latest its current revision, when the caller already read it
	 * @return array
	 */
	public function pageFacts( Title $title, ?RevisionRecord $latest = null ): array {
		$facts = [
			'id' => $title->getArticleID(),
			'namespace' => $title->getNamespace(),
			'title' => $title->getText(),
			'prefixedtitle' => $title->getPrefixedText(),
		];
		$restrictionStore = $this->services->getRestrictionStore();
		$restrictions = [];
		foreach ( [ 'edit', 'move', 'create', 'upload' ] as $type ) {
			$levels = array_values( array_filter( $restrictionStore->getRestrictions( $title, $type ) ) );
			if ( $levels ) {
				$restrictions[$type] = $levels;
			}
		}
		if ( $restrictions ) {
			$facts['restrictions'] = $restrictions;
		}
		if ( $facts['id'] > 0 ) {
			$revisions = $this->services->getRevisionLookup();
			$first = $revisions->getFirstRevision( $title );
			if ( $first ) {
				$facts['created'] = $first->getTimestamp();
				$author = $first->getUser( RevisionRecord::RAW );
				if ( $author ) {
					$facts['first_contributor'] = $author->getName();
				}
			}
			$latest = $latest ?? $this->currentRevision( $title );
			if ( $latest ) {
				$facts['last_edited'] = $latest->getTimestamp();
			}
			$facts['recent_contributors'] = $this->recentContributors( $facts['id'] );
		}
		return $facts;
	}

	/**
	 * The distinct authors of the page's last 100 revisions, newest first (AbuseFilter's
	 * page_recent_contributors).
	 *
	 * @param int $pageId
	 * @return string[]
	 */
	private function recentContributors( int $pageId ): array {
		$dbr = $this->services->getDBLoadBalancer()->getConnection( DB_REPLICA );
		$names = $dbr->selectFieldValues(
			[ 'revision', 'actor' ],
			'actor_name',
			[ 'rev_page' => $pageId ],
			__METHOD__,
			[ 'ORDER BY' => 'rev_timestamp DESC', 'LIMIT' => 100 ],
			[ 'actor' => [ 'JOIN', 'actor_id = rev_actor' ] ]
		);
		return array_values( array_unique( $names ) );
	}

	/**
	 * What an edit or upload check says of the page as it is: its facts, and its current
	 * text and content model, from one read of the current revision.
	 *
	 * @param Title $title
	 * @return array [page facts, text ('' for a new page), content model or null]
	 */
	public function currentPage( Title $title ): array {
		$latest = $this->currentRevision( $title );
		[ $text, $model ] = $this->currentText( $latest );
		return [ $this->pageFacts( $title, $latest ), $text, $model ];
	}

	/**
	 * The page's current revision, or null for a new page.
	 *
	 * @param Title $title
	 * @return RevisionRecord|null
	 */
	public function currentRevision( Title $title ): ?RevisionRecord {
		$id = $title->exists() ? $title->getLatestRevID() : 0;
		return $id ? $this->services->getRevisionLookup()->getRevisionById( $id ) : null;
	}

	/**
	 * The text of a page's current revision (main slot), or '' when the page is new.
	 *
	 * @param RevisionRecord|null $rev the current revision (see currentRevision())
	 * @return array [text, content model or null]
	 */
	public function currentText( ?RevisionRecord $rev ): array {
		$content = $rev ? $rev->getContent( SlotRecord::MAIN, RevisionRecord::RAW ) : null;
		if ( !$content ) {
			return [ '', null ];
		}
		return [ $content instanceof \TextContent ? $content->getText() : '', $content->getModel() ];
	}
}
