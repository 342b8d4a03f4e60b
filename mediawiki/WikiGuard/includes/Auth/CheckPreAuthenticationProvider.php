<?php

namespace MediaWiki\Extension\WikiGuard\Auth;

use MediaWiki\Auth\AbstractPreAuthenticationProvider;
use MediaWiki\Extension\WikiGuard\Checker;
use StatusValue;
use User;

/**
 * Sends account creations (createaccount, and autocreateaccount from central login or
 * similar) to the check door, so filters on `accountname` can refuse them.
 */
class CheckPreAuthenticationProvider extends AbstractPreAuthenticationProvider {
	/** @var Checker */
	private $checker;

	/**
	 * @param Checker $checker
	 */
	public function __construct( Checker $checker ) {
		$this->checker = $checker;
	}

	/**
	 * @inheritDoc
	 */
	public function testForAccountCreation( $user, $creator, array $reqs ) {
		if ( !$this->checker->checks( 'createaccount' ) ) {
			return StatusValue::newGood();
		}
		return $this->check( 'createaccount', $user, $creator );
	}

	/**
	 * @inheritDoc
	 */
	public function testUserForCreation( $user, $autocreate, array $options = [] ) {
		if ( !$autocreate || !$this->checker->checks( 'autocreateaccount' ) ) {
			return StatusValue::newGood();
		}
		// An auto-creation has no other performer than the account itself.
		return $this->check( 'autocreateaccount', $user, $user );
	}

	/**
	 * @param string $kind
	 * @param User $account the account to create
	 * @param User $creator who creates it (the new user themselves when logged out)
	 * @return StatusValue
	 */
	private function check( string $kind, User $account, User $creator ): StatusValue {
		return $this->checker->guarded( function () use ( $kind, $account, $creator ) {
			$action = $this->checker->base( $kind, $creator );
			$userPage = $account->getUserPage();
			$action['page'] = $this->checker->pageFacts( $userPage );
			$action['accountname'] = $account->getName();
			return $this->checker->check( $action, $creator,
				Checker::tagKey( $kind, $account->getName(), $userPage->getPrefixedText() ) );
		} );
	}
}
