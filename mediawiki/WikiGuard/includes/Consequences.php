<?php

namespace MediaWiki\Extension\WikiGuard;

use BagOStuff;
use MediaWiki\Block\BlockUserFactory;
use MediaWiki\User\UserGroupManager;
use Psr\Log\LoggerInterface;
use User;

/**
 * Applies the service's block, rangeblock, degroup and blockautopromote answers through
 * MediaWiki's own services, as the system user "WikiGuard" (message wikiguard-blocker).
 */
class Consequences {
	/** @var BlockUserFactory */
	private $blockUserFactory;
	/** @var UserGroupManager */
	private $userGroupManager;
	/** @var BagOStuff */
	private $stash;
	/** @var LoggerInterface */
	private $logger;

	/**
	 * @param BlockUserFactory $blockUserFactory
	 * @param UserGroupManager $userGroupManager
	 * @param BagOStuff $stash
	 * @param LoggerInterface $logger
	 */
	public function __construct(
		BlockUserFactory $blockUserFactory,
		UserGroupManager $userGroupManager,
		BagOStuff $stash,
		LoggerInterface $logger
	) {
		$this->blockUserFactory = $blockUserFactory;
		$this->userGroupManager = $userGroupManager;
		$this->stash = $stash;
		$this->logger = $logger;
	}

	/**
	 * The user the consequences are performed by.
	 *
	 * @return User
	 */
	public function performer(): User {
		$name = wfMessage( 'wikiguard-blocker' )->inContentLanguage()->text();
		return User::newSystemUser( $name, [ 'steal' => true ] );
	}

	/**
	 * Applies every consequence of a check answer's `actions` to $user.
	 *
	 * @param array $actions the answer's `actions`
	 * @param array $descriptions filter id => description
	 * @param User $user who did the action
	 * @param string $ip the request's IP address
	 * @return string[] the consequences applied
	 */
	public function apply( array $actions, array $descriptions, User $user, string $ip ): array {
		$applied = [];
		if ( isset( $actions['block'] ) ) {
			$b = $actions['block'];
			$target = $user->isRegistered() ? $user : $ip;
			if ( $this->block( $target, (string)( $b['expiry'] ?? 'infinity' ), !empty( $b['talk'] ),
				$user->isRegistered(), $this->reason( 'wikiguard-blockreason', $b, $descriptions ) )
			) {
				$applied[] = 'block';
			}
		}
		if ( isset( $actions['rangeblock'] ) ) {
			$r = $actions['rangeblock'];
			if ( $this->block( (string)$r['range'], (string)( $r['duration'] ?? '1 week' ), false, false,
				$this->reason( 'wikiguard-blockreason', $r, $descriptions ) )
			) {
				$applied[] = 'rangeblock';
			}
		}
		if ( isset( $actions['degroup'] ) && $user->isRegistered() ) {
			$groups = $this->userGroupManager->getUserGroups( $user );
			foreach ( $groups as $group ) {
				$this->userGroupManager->removeUserFromGroup( $user, $group );
			}
			if ( $groups ) {
				$this->logRights( $user, $groups, $this->reason( 'wikiguard-degroupreason', $actions['degroup'], $descriptions ) );
			}
			$applied[] = 'degroup';
		}
		if ( isset( $actions['blockautopromote'] ) && $user->isRegistered() ) {
			$seconds = (int)( $actions['blockautopromote']['duration'] ?? 5 * 86400 );
			$this->stash->set( $this->autopromoteKey( $user->getId() ), 1, max( 1, $seconds ) );
			$applied[] = 'blockautopromote';
		}
		return $applied;
	}

	/**
	 * Whether a blockautopromote hold is on this user.
	 *
	 * @param int $userId
	 * @return bool
	 */
	public function autopromoteBlocked( int $userId ): bool {
		return $userId > 0 && (bool)$this->stash->get( $this->autopromoteKey( $userId ) );
	}

	/**
	 * @param int $userId
	 * @return string
	 */
	private function autopromoteKey( int $userId ): string {
		return $this->stash->makeKey( 'wikiguard', 'blockautopromote', (string)$userId );
	}

	/**
	 * @param string $key message key
	 * @param array $action one consequence, with its `filter`
	 * @param array $descriptions
	 * @return string
	 */
	private function reason( string $key, array $action, array $descriptions ): string {
		$filter = (int)( $action['filter'] ?? 0 );
		return wfMessage( $key, $descriptions[$filter] ?? '', $filter )->inContentLanguage()->text();
	}

	/**
	 * @param User|string $target
	 * @param string $expiry
	 * @param bool $blockTalk
	 * @param bool $autoblock
	 * @param string $reason
	 * @return bool
	 */
	private function block( $target, string $expiry, bool $blockTalk, bool $autoblock, string $reason ): bool {
		$expiry = in_array( $expiry, [ 'indefinite', 'infinite', 'never', '' ], true ) ? 'infinity' : $expiry;
		try {
			$status = $this->blockUserFactory->newBlockUser(
				$target,
				$this->performer(),
				$expiry,
				$reason,
				[
					'isCreateAccountBlocked' => true,
					'isAutoblocking' => $autoblock,
					'isUserTalkEditBlocked' => $blockTalk,
					'isHardBlock' => false,
				]
			)->placeBlockUnsafe();
		} catch ( \Throwable $e ) {
			$this->logger->error( 'WikiGuard: placing a block failed: {error}', [ 'error' => $e->getMessage() ] );
			return false;
		}
		if ( !$status->isOK() ) {
			// Most often: already blocked. The existing block stands.
			$this->logger->info( 'WikiGuard: block not placed: {status}', [ 'status' => (string)$status ] );
			return false;
		}
		return true;
	}

	/**
	 * A rights-log entry for groups taken away, as Special:UserRights writes.
	 *
	 * @param User $user
	 * @param string[] $removed
	 * @param string $reason
	 */
	private function logRights( User $user, array $removed, string $reason ): void {
		$entry = new \ManualLogEntry( 'rights', 'rights' );
		$entry->setPerformer( $this->performer() );
		$entry->setTarget( $user->getUserPage() );
		$entry->setComment( $reason );
		$entry->setParameters( [ '4::oldgroups' => $removed, '5::newgroups' => [] ] );
		$entry->insert();
	}
}
